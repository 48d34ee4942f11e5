import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { sessionStoreContract } from "./support/SessionStoreContract.ts"

sessionStoreContract(memoryHarness)
