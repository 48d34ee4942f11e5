import { Metrics } from "@cowork/observability"
import { InstrumentedObjectStore } from "@cowork/storage"
import { Layer } from "effect"
import { objectStoreContract } from "./support/ObjectStoreContract.ts"

objectStoreContract(
  "memory",
  InstrumentedObjectStore.layerMemory.pipe(Layer.provideMerge(Metrics.layerTest("worker"))),
  "memory"
)
