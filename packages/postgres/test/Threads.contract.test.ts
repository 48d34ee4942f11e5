import { threadsContract } from "../../services/test/support/ThreadsContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

threadsContract(pgHarness)
