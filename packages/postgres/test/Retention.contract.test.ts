import { retentionContract } from "../../services/test/support/RetentionContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

retentionContract(pgHarness)
