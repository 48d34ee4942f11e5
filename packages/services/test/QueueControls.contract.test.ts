import { queueControlsContract } from "./support/QueueControlsContract.ts"
import { memoryHarness } from "./support/ControlPlaneHarness.ts"

queueControlsContract(memoryHarness)
