import { MemoryControlPlane, WorkflowStore } from "@cowork/services"
import { Effect, Layer } from "effect"
import { workflowStoreContract } from "./support/WorkflowStoreContract.ts"

workflowStoreContract(
  "memory",
  WorkflowStore.layerMemory.pipe(Layer.provideMerge(MemoryControlPlane.layer)),
  Effect.sync(() => `org_${globalThis.crypto.randomUUID().slice(0, 8)}`)
)
