import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { heartbeatsContract } from "./support/HeartbeatsContract.ts"

heartbeatsContract(memoryHarness)
