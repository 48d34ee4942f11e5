import type { ReadinessCheck } from "@cowork/domain"
import { DeploymentMarkers, ObjectStore, readAll } from "@cowork/services"
import { Clock, Effect, Option } from "effect"

/** A probe result is reused this long, so readiness polling does not turn into object-store traffic. */
const PROBE_CACHE_MS = 10_000
const PROBE_TIMEOUT_MS = 5_000
const MARKER = "object_store"
const markerKey = (id: string) => `readiness/deployment-${id}`

export const NOT_THE_DEPLOYMENTS_STORE =
  "this process's object store does not hold the deployment's marker: every process must use the same OPEN_COWORK_OBJECT_STORE_URI"

const cache = new WeakMap<ObjectStore["Service"], { readonly at: number; readonly check: ReadinessCheck }>()

/**
 * The deployment's marker object: the first process to probe writes one and records its id; every other process
 * must find that object in its own store, or it writes where the others cannot read (checkpoints, artifacts).
 */
const holdsDeploymentMarker = (store: ObjectStore["Service"], markers: DeploymentMarkers["Service"]) =>
  Effect.gen(function*() {
    let id = Option.getOrUndefined(yield* markers.read(MARKER))
    if (id === undefined) {
      const candidate = globalThis.crypto.randomUUID()
      yield* store.put(markerKey(candidate), new TextEncoder().encode("cowork deployment marker"), { contentType: "text/plain" })
      id = yield* markers.establish(MARKER, candidate)
      if (id !== candidate) yield* store.delete(markerKey(candidate))
    }
    return Option.isSome(yield* store.head(markerKey(id)))
  })

/**
 * The marker first, then the round trip: once the marker is written, `readiness/` is never empty, so a probe's delete
 * never empties it while another process writes there (a store that removes emptied directories, as the dev S3
 * server `s3rver` does, fails that write — and s3rver 3.7 crashed on it in the failover drill).
 */
const probe = (store: ObjectStore["Service"], markers: DeploymentMarkers["Service"]) =>
  Effect.gen(function*() {
    if (!(yield* holdsDeploymentMarker(store, markers))) {
      return { name: "object_store", status: "error", detail: NOT_THE_DEPLOYMENTS_STORE } satisfies ReadinessCheck
    }
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

/**
 * `/readyz` `object_store`: a put/get/delete round trip, and the deployment's marker found in this store (a split
 * process on another store is not ready); cached for PROBE_CACHE_MS.
 */
export const objectStoreCheck: Effect.Effect<ReadinessCheck, never, ObjectStore | DeploymentMarkers> = Effect.gen(function*() {
  const store = yield* ObjectStore
  const markers = yield* DeploymentMarkers
  const now = yield* Clock.currentTimeMillis
  const cached = cache.get(store)
  if (cached !== undefined && now - cached.at < PROBE_CACHE_MS) return cached.check
  const check = yield* probe(store, markers)
  cache.set(store, { at: now, check })
  return check
})
