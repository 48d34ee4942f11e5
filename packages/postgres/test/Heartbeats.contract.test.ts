import { heartbeatsContract } from "../../services/test/support/HeartbeatsContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

heartbeatsContract(pgHarness)
