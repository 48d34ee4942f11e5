import type { ReadinessCheck } from "@cowork/domain"
import { SecretAdapter } from "@cowork/services"
import { Clock, Effect } from "effect"

/** A probe result is reused this long, so readiness polling does not turn into key-material work. */
export const PROBE_CACHE_MS = 10_000
const PROBE_TIMEOUT_MS = 5_000
/** A reserved org id: its data key protects nothing but the probe. */
const PROBE_ORG = "readiness-probe"

const cache = new WeakMap<SecretAdapter["Service"], { readonly at: number; readonly check: ReadinessCheck }>()

const probe = (adapter: SecretAdapter["Service"]) =>
  Effect.gen(function*() {
    const plaintext = new TextEncoder().encode("ok")
    const sealed = yield* adapter.encrypt(PROBE_ORG, plaintext, "readiness")
    const opened = yield* adapter.decrypt(PROBE_ORG, sealed, "readiness")
    return new TextDecoder().decode(opened) === "ok"
      ? { name: "secret_adapter", status: "ok" } satisfies ReadinessCheck
      : { name: "secret_adapter", status: "error", detail: "probe decrypted to different bytes" } satisfies ReadinessCheck
  }).pipe(
    Effect.timeoutOption(PROBE_TIMEOUT_MS),
    Effect.map((result): ReadinessCheck =>
      result._tag === "Some" ? result.value : { name: "secret_adapter", status: "error", detail: "probe timed out" }),
    // The detail names the failure class only: never a key reference, path or key material.
    Effect.catch((error): Effect.Effect<ReadinessCheck> =>
      Effect.succeed({ name: "secret_adapter", status: "error", detail: error._tag }))
  )

/** `/readyz` `secret_adapter`: an envelope encrypt/decrypt round trip with the configured keys, cached briefly. */
export const secretAdapterCheck: Effect.Effect<ReadinessCheck, never, SecretAdapter> = Effect.gen(function*() {
  const adapter = yield* SecretAdapter
  const now = yield* Clock.currentTimeMillis
  const cached = cache.get(adapter)
  if (cached !== undefined && now - cached.at < PROBE_CACHE_MS) return cached.check
  const check = yield* probe(adapter)
  cache.set(adapter, { at: now, check })
  return check
})
