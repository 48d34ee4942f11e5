import { layerMemoryControlPlane } from "@cowork/services"
import { offboardingContract } from "./support/OffboardingContract.ts"

offboardingContract("memory", layerMemoryControlPlane)
