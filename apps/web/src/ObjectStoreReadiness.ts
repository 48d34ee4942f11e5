import type { ReadinessCheck } from "@cowork/domain"
import { ObjectStore, readAll } from "@cowork/services"
import { Clock, Effect } from "effect"

/** A probe result is reused this long, so readiness polling does not turn into object-store traffic. */
export const PROBE_CACHE_MS = 10_000
const PROBE_TIMEOUT_MS = 5_000

const cache = new WeakMap<ObjectStore["Service"], { readonly at: number; readonly check: ReadinessCheck }>()

const probe = (store: ObjectStore["Service"]) =>
  Effect.gen(function*() {
    const key = `readiness/probe-${globalThis.crypto.randomUUID()}`
    const payload = new TextEncoder().encode("ok")
    yield* store.put(key, payload, { contentType: "text/plain" })
    const read = yield* readAll(yield* store.get(key))
    yield* store.delete(key)
    return new TextDecoder().decode(read) === "ok"
      ? { name: "object_store", status: "ok" } satisfies ReadinessCheck
      : { name: "object_store", status: "error", detail: "probe read back different bytes" } satisfies ReadinessCheck
  }).pipe(
    Effect.timeoutOption(PROBE_TIMEOUT_MS),
    Effect.map((result): ReadinessCheck =>
      result._tag === "Some" ? result.value : { name: "object_store", status: "error", detail: "probe timed out" }),
    Effect.catch((error): Effect.Effect<ReadinessCheck> =>
      Effect.succeed({ name: "object_store", status: "error", detail: `${store.kind} store: ${error._tag}` }))
  )

/** `/readyz` `object_store`: a put/get/delete round trip, cached for PROBE_CACHE_MS. */
export const objectStoreCheck: Effect.Effect<ReadinessCheck, never, ObjectStore> = Effect.gen(function*() {
  const store = yield* ObjectStore
  const now = yield* Clock.currentTimeMillis
  const cached = cache.get(store)
  if (cached !== undefined && now - cached.at < PROBE_CACHE_MS) return cached.check
  const check = yield* probe(store)
  cache.set(store, { at: now, check })
  return check
})
