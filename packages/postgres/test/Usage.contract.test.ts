import { PgUsage } from "@cowork/postgres"
import { usageContract } from "../../services/test/support/UsageContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

usageContract(pgHarness, PgUsage.layer)
