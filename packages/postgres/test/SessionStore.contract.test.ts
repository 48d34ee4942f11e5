import { sessionStoreContract } from "../../services/test/support/SessionStoreContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

sessionStoreContract(pgHarness)
