import { queueControlsContract } from "../../services/test/support/QueueControlsContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

queueControlsContract(pgHarness)
