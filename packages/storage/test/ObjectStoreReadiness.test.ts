import { NOT_THE_DEPLOYMENTS_STORE, objectStoreCheck } from "@cowork/storage"
import { DeploymentMarkers, ObjectStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"

it.effect("object_store: ok on the deployment's store; a process on another store is not ready", () =>
  Effect.gen(function*() {
    const storeA = Context.get(yield* Layer.build(Layer.fresh(ObjectStore.layerMemory)), ObjectStore)
    const storeB = Context.get(yield* Layer.build(Layer.fresh(ObjectStore.layerMemory)), ObjectStore)
    const checkWith = (store: ObjectStore["Service"]) => Effect.provideService(objectStoreCheck, ObjectStore, store)
    assert.deepStrictEqual(yield* checkWith(storeA), { name: "object_store", status: "ok" })
    assert.deepStrictEqual(yield* checkWith(storeB), { name: "object_store", status: "error", detail: NOT_THE_DEPLOYMENTS_STORE })
    assert.deepStrictEqual((yield* storeA.list("readiness/")).length, 1, "one marker; the probe objects are deleted")
  }).pipe(Effect.scoped, Effect.provide(DeploymentMarkers.layerMemory)))
