import { ObjectStoreUnavailable } from "@cowork/domain"
import { ObjectStore, type ObjectStoreOperation } from "@cowork/services"
import { Clock, Context, Duration, Effect, Layer } from "effect"

/** Scripted object-store failures for drills; every timing reads the Effect Clock, so TestClock drives it. */
export class ObjectStoreFaults extends Context.Service<ObjectStoreFaults, {
  /** The next `count` calls (of `operations`, default all) fail with ObjectStoreUnavailable. */
  readonly failNext: (count: number, operations?: ReadonlyArray<ObjectStoreOperation>) => Effect.Effect<void>
  /** Every call waits this long first (on the Clock). */
  readonly setLatency: (latency: Duration.Input) => Effect.Effect<void>
  /** Every call fails from now until `duration` has passed on the Clock. */
  readonly outageFor: (duration: Duration.Input) => Effect.Effect<void>
  readonly reset: Effect.Effect<void>
  /** Calls failed by this layer so far. */
  readonly injectedFailures: Effect.Effect<number>
}>()("cowork/ObjectStoreFaults") {}

/** Wraps the ObjectStore below it; provides the faulty ObjectStore and its ObjectStoreFaults controls. */
export const layer: Layer.Layer<ObjectStore | ObjectStoreFaults, never, ObjectStore> = Layer.effectContext(
  Effect.gen(function*() {
    const inner = yield* ObjectStore
    let failuresLeft = 0
    let failingOperations: ReadonlyArray<ObjectStoreOperation> | undefined
    let latencyMs = 0
    let outageUntil = Number.NEGATIVE_INFINITY
    let injected = 0

    const gate = (operation: ObjectStoreOperation, key: string | undefined) =>
      Effect.gen(function*() {
        if (latencyMs > 0) yield* Effect.sleep(Duration.millis(latencyMs))
        const now = yield* Clock.currentTimeMillis
        let reason: string | undefined
        if (now < outageUntil) reason = "injected outage"
        else if (failuresLeft > 0 && (failingOperations === undefined || failingOperations.includes(operation))) {
          failuresLeft -= 1
          reason = "injected failure"
        }
        if (reason !== undefined) {
          injected += 1
          return yield* new ObjectStoreUnavailable({ operation, key, message: reason })
        }
      })

    const faulty = ObjectStore.of({
      kind: inner.kind,
      put: (key, content, options) => Effect.andThen(gate("put", key), inner.put(key, content, options)),
      get: (key) => Effect.andThen(gate("get", key), inner.get(key)),
      head: (key) => Effect.andThen(gate("head", key), inner.head(key)),
      delete: (key) => Effect.andThen(gate("delete", key), inner.delete(key)),
      list: (prefix) => Effect.andThen(gate("list", prefix), inner.list(prefix)),
      keys: (prefix) => Effect.andThen(gate("list", prefix), inner.keys(prefix))
    })

    const faults = ObjectStoreFaults.of({
      failNext: (count, operations) =>
        Effect.sync(() => {
          failuresLeft = count
          failingOperations = operations
        }),
      setLatency: (latency) => Effect.sync(() => void (latencyMs = Duration.toMillis(latency))),
      outageFor: (duration) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          outageUntil = now + Duration.toMillis(duration)
        }),
      reset: Effect.sync(() => {
        failuresLeft = 0
        failingOperations = undefined
        latencyMs = 0
        outageUntil = Number.NEGATIVE_INFINITY
      }),
      injectedFailures: Effect.sync(() => injected)
    })

    return Context.make(ObjectStore, faulty).pipe(Context.add(ObjectStoreFaults, faults))
  })
)
