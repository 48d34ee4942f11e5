import { retentionContract } from "./support/RetentionContract.ts"
import { memoryHarness } from "./support/ControlPlaneHarness.ts"

retentionContract(memoryHarness)
