import { DeploymentMarkers } from "@cowork/services"
import { deploymentMarkersContract } from "./support/DeploymentMarkersContract.ts"

deploymentMarkersContract("memory", DeploymentMarkers.layerMemory)
