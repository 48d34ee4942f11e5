import { Identity } from "@cowork/services"
import { Effect } from "effect"
import { identityContract } from "./support/IdentityContract.ts"

identityContract("memory", Identity.layerMemory, Effect.sync(() => `org_${globalThis.crypto.randomUUID()}`))
