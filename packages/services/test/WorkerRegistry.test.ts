import { MemoryDatabase, WorkerRegistry } from "@cowork/services"
import { Layer } from "effect"
import { workerRegistryContract } from "./support/WorkerRegistryContract.ts"

workerRegistryContract("memory", WorkerRegistry.layerMemory.pipe(Layer.provide(MemoryDatabase.layer)))
