import { Quotas } from "@cowork/services"
import { Effect } from "effect"
import { quotasContract } from "./support/QuotasContract.ts"

quotasContract("memory", Quotas.layerMemory, Effect.sync(() => `org_${globalThis.crypto.randomUUID().slice(0, 8)}`))
