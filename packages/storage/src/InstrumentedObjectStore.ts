import { Metrics } from "@cowork/observability"
import { makeMemoryObjectStore, ObjectStore, type ObjectStoreOperation } from "@cowork/services"
import { Cause, Effect, Exit, Layer, type Scope } from "effect"

/**
 * Wraps an adapter so every call counts in `open_cowork_cloud_object_store_operations_total` and times in
 * `open_cowork_cloud_object_store_operation_duration_ms`. Only a store failure (`ObjectStoreUnavailable` or a
 * defect) is `status="error"`: a missing key or a refused key is an answer from a healthy store.
 */
const instrument = (store: ObjectStore["Service"]): Effect.Effect<ObjectStore["Service"], never, Metrics> =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const kind = store.kind
    const isStoreFailure = (cause: Cause.Cause<unknown>) =>
      cause.reasons.some((reason) =>
        reason._tag === "Die" ||
        (reason._tag === "Fail" && (reason.error as { readonly _tag?: unknown } | undefined)?._tag === "ObjectStoreUnavailable")
      )
    const record = <A, E, R>(operation: ObjectStoreOperation, effect: Effect.Effect<A, E, R>) =>
      effect.pipe(
        metrics.time("open_cowork_cloud_object_store_operation_duration_ms", { operation, cloud_object_store_kind: kind }),
        Effect.onExit((exit) =>
          Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
            ? Effect.void
            : metrics.inc("open_cowork_cloud_object_store_operations_total", {
              operation,
              status: Exit.isFailure(exit) && isStoreFailure(exit.cause) ? "error" : "ok",
              cloud_object_store_kind: kind
            })
        )
      )
    return ObjectStore.of({
      kind,
      put: (key, content, options) => record("put", store.put(key, content, options)),
      get: (key) => record("get", store.get(key)),
      head: (key) => record("head", store.head(key)),
      delete: (key) => record("delete", store.delete(key)),
      list: (prefix) => record("list", store.list(prefix)),
      keys: (prefix) => record("list", store.keys(prefix))
    })
  })

/** A layer of `make`'s adapter, instrumented. */
export const layer = <E, R>(
  make: Effect.Effect<ObjectStore["Service"], E, R>
): Layer.Layer<ObjectStore, E, Metrics | Exclude<R, Scope.Scope>> =>
  Layer.effect(ObjectStore, Effect.flatMap(make, instrument))

/** The in-memory store, instrumented (kind `memory`). */
export const layerMemory: Layer.Layer<ObjectStore, never, Metrics> = layer(Effect.sync(makeMemoryObjectStore))
