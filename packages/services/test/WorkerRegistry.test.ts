import { MemoryDatabase, WorkerRegistry } from "@cowork/services"
import { Effect, Layer } from "effect"
import { workerRegistryContract } from "./support/WorkerRegistryContract.ts"

workerRegistryContract(
  "memory",
  WorkerRegistry.layerMemory.pipe(Layer.provideMerge(MemoryDatabase.layer)),
  undefined,
  (orgId) => Effect.map(MemoryDatabase, (db) => void db.orgs.set(orgId, { id: orgId, name: orgId, createdAt: 0 }))
)
