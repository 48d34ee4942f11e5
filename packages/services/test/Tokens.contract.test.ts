import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { tokensContract } from "./support/TokensContract.ts"

tokensContract(memoryHarness)
