import { changeFeedContract } from "../../services/test/support/ChangeFeedContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

changeFeedContract(pgHarness)
