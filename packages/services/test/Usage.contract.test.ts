import { Usage } from "@cowork/services"
import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { usageContract } from "./support/UsageContract.ts"

usageContract(memoryHarness, Usage.layerMemory)
