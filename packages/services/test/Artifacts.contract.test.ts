import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { artifactsContract } from "./support/ArtifactsContract.ts"

artifactsContract(memoryHarness)
