import { promptQuotaContract } from "../../services/test/support/PromptQuotaContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

promptQuotaContract(pgHarness)
