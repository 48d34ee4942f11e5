import { WorkerRegistry } from "@cowork/services"
import { workerRegistryContract } from "./support/WorkerRegistryContract.ts"

workerRegistryContract("memory", WorkerRegistry.layerMemory)
