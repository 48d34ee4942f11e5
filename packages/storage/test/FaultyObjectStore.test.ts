import { ObjectStore } from "@cowork/services"
import { FaultyObjectStore } from "@cowork/storage"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import { failureOf } from "./support/ObjectStoreContract.ts"

const faultyMemory = FaultyObjectStore.layer.pipe(Layer.provide(ObjectStore.layerMemory))
const bytes = new TextEncoder().encode("x")

describe("FaultyObjectStore", () => {
  it.effect("fails the next N calls (of the chosen operations), then recovers", () =>
    Effect.gen(function*() {
      const store = yield* ObjectStore
      const faults = yield* FaultyObjectStore.ObjectStoreFaults
      yield* store.put("k", bytes)
      yield* faults.failNext(2, ["get", "head"])
      yield* store.put("other", bytes)
      const attempts: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string; readonly key?: string | undefined }>> = [store.head("k"), store.get("k")]
      for (const attempt of attempts) {
        assert.deepInclude(failureOf(yield* Effect.exit(attempt)), { _tag: "ObjectStoreUnavailable", key: "k" })
      }
      assert.isTrue(Option.isSome(yield* store.head("k")))
      assert.strictEqual(yield* faults.injectedFailures, 2)
    }).pipe(Effect.provide(faultyMemory)))

  it.effect("an outage window on the Clock fails every call until it has passed", () =>
    Effect.gen(function*() {
      const store = yield* ObjectStore
      const faults = yield* FaultyObjectStore.ObjectStoreFaults
      yield* faults.outageFor("30 seconds")
      assert.strictEqual(failureOf(yield* Effect.exit(store.put("k", bytes)))?._tag, "ObjectStoreUnavailable")
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual(failureOf(yield* Effect.exit(store.list("")))?._tag, "ObjectStoreUnavailable")
      yield* TestClock.adjust("1 second")
      yield* store.put("k", bytes)
      assert.deepStrictEqual((yield* store.list("")).map(({ key, size }) => ({ key, size })), [{ key: "k", size: 1 }])
    }).pipe(Effect.provide(faultyMemory)))

  it.effect("latency delays each call by the Clock", () =>
    Effect.gen(function*() {
      const store = yield* ObjectStore
      const faults = yield* FaultyObjectStore.ObjectStoreFaults
      yield* faults.setLatency("2 seconds")
      const fiber = yield* Effect.forkChild(store.head("k"))
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.isTrue(Option.isNone(yield* Fiber.join(fiber)))
    }).pipe(Effect.provide(faultyMemory)))
})
