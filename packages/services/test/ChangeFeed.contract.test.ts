import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { changeFeedContract } from "./support/ChangeFeedContract.ts"

changeFeedContract(memoryHarness)
