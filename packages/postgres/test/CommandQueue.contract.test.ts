import { commandQueueContract } from "../../services/test/support/CommandQueueContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

commandQueueContract(pgHarness)
