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

it.effect("object_store: once a process has probed, readiness/ never empties (a store that drops emptied directories fails a concurrent put there)", () =>
  Effect.gen(function*() {
    const shared = Context.get(yield* Layer.build(Layer.fresh(ObjectStore.layerMemory)), ObjectStore)
    const emptied: Array<string> = []
    // Two processes on the same store (each with its own probe cache): every delete that leaves readiness/ empty is
    // the moment s3rver removes the directory under another process's put.
    const processView = (): ObjectStore["Service"] => ({
      ...shared,
      delete: (key) =>
        shared.delete(key).pipe(
          Effect.andThen(shared.list("readiness/")),
          Effect.map((left) => {
            if (left.length === 0 && key.startsWith("readiness/")) emptied.push(key)
          })
        )
    })
    const checkWith = (store: ObjectStore["Service"]) => Effect.provideService(objectStoreCheck, ObjectStore, store)
    const [a, b] = [processView(), processView()]
    assert.deepStrictEqual(yield* checkWith(a), { name: "object_store", status: "ok" })
    assert.deepStrictEqual(yield* checkWith(b), { name: "object_store", status: "ok" })
    assert.deepStrictEqual(emptied, [], "no delete emptied readiness/")
  }).pipe(Effect.scoped, Effect.provide(DeploymentMarkers.layerMemory)))
