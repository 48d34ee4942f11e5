import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { threadsContract } from "./support/ThreadsContract.ts"

threadsContract(memoryHarness)
