import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { controlPlaneStatusContract } from "./support/ControlPlaneStatusContract.ts"

controlPlaneStatusContract(memoryHarness)
