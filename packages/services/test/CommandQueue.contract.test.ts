import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { commandQueueContract } from "./support/CommandQueueContract.ts"

commandQueueContract(memoryHarness)
