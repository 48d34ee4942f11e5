import { tokensContract } from "../../services/test/support/TokensContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

tokensContract(pgHarness)
