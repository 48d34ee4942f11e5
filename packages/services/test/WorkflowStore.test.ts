import { layerMemoryControlPlane, WorkflowStore } from "@cowork/services"
import { Effect, Layer } from "effect"
import { workflowStoreContract } from "./support/WorkflowStoreContract.ts"

workflowStoreContract(
  "memory",
  WorkflowStore.layerMemory.pipe(Layer.provideMerge(layerMemoryControlPlane)),
  Effect.sync(() => `org_${globalThis.crypto.randomUUID().slice(0, 8)}`)
)
