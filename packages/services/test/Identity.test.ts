import { Identity, MemoryDatabase, Tokens } from "@cowork/services"
import { Effect, Layer } from "effect"
import { identityContract } from "./support/IdentityContract.ts"

const newOrg = Effect.gen(function*() {
  return (yield* (yield* Tokens).createOrg("contract")).orgId
})

identityContract("memory", Layer.merge(Identity.layerMemory, Tokens.layerMemory).pipe(Layer.provideMerge(MemoryDatabase.layer)), newOrg)
