import { MemoryDatabase, Quotas } from "@cowork/services"
import { Effect, Layer } from "effect"
import { quotasContract } from "./support/QuotasContract.ts"

quotasContract("memory", Quotas.layerMemory.pipe(Layer.provide(MemoryDatabase.layer)), Effect.sync(() => `org_${globalThis.crypto.randomUUID().slice(0, 8)}`))
