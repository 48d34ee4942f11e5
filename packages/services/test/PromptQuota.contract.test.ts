import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { promptQuotaContract } from "./support/PromptQuotaContract.ts"

promptQuotaContract(memoryHarness)
