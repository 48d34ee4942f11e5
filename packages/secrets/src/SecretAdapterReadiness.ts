import type { ReadinessCheck } from "@cowork/domain"
import { DeploymentMarkers, SecretAdapter } from "@cowork/services"
import { Clock, Effect, Option } from "effect"

/** A probe result is reused this long, so readiness polling does not turn into key-material work. */
const PROBE_CACHE_MS = 10_000
const PROBE_TIMEOUT_MS = 5_000
/** A reserved org id: its data key protects nothing but the probe. */
const PROBE_ORG = "readiness-probe"
const MARKER = "secret_adapter"
const MARKER_CONTEXT = "deployment-key-probe"
const MARKER_TEXT = "cowork deployment key probe"

export const NOT_THE_DEPLOYMENTS_KEY =
  "this process's secret key cannot open the deployment's key probe: every process must use the same OPEN_COWORK_CLOUD_SECRET_KEY_REF key"

const cache = new WeakMap<SecretAdapter["Service"], { readonly at: number; readonly check: ReadinessCheck }>()

/**
 * The deployment's key probe: the first process to probe seals one and records it; every other process must open
 * it with its own keys, or it seals what the others cannot open (checkpoints).
 */
const opensDeploymentProbe = (adapter: SecretAdapter["Service"], markers: DeploymentMarkers["Service"]) =>
  Effect.gen(function*() {
    let sealed = Option.getOrUndefined(yield* markers.read(MARKER))
    if (sealed === undefined) {
      const candidate = yield* adapter.encrypt(PROBE_ORG, new TextEncoder().encode(MARKER_TEXT), MARKER_CONTEXT)
      sealed = yield* markers.establish(MARKER, Buffer.from(candidate).toString("base64"))
    }
    return yield* adapter.decrypt(PROBE_ORG, new Uint8Array(Buffer.from(sealed, "base64")), MARKER_CONTEXT).pipe(
      Effect.map((opened) => new TextDecoder().decode(opened) === MARKER_TEXT),
      Effect.catchTag("SecretRevealFailed", () => Effect.succeed(false))
    )
  })

const probe = (adapter: SecretAdapter["Service"], markers: DeploymentMarkers["Service"]) =>
  Effect.gen(function*() {
    const plaintext = new TextEncoder().encode("ok")
    const sealed = yield* adapter.encrypt(PROBE_ORG, plaintext, "readiness")
    const opened = yield* adapter.decrypt(PROBE_ORG, sealed, "readiness")
    if (new TextDecoder().decode(opened) !== "ok") {
      return { name: "secret_adapter", status: "error", detail: "probe decrypted to different bytes" } satisfies ReadinessCheck
    }
    return (yield* opensDeploymentProbe(adapter, markers))
      ? { name: "secret_adapter", status: "ok" } satisfies ReadinessCheck
      : { name: "secret_adapter", status: "error", detail: NOT_THE_DEPLOYMENTS_KEY } satisfies ReadinessCheck
  }).pipe(
    Effect.timeoutOption(PROBE_TIMEOUT_MS),
    Effect.map((result): ReadinessCheck =>
      result._tag === "Some" ? result.value : { name: "secret_adapter", status: "error", detail: "probe timed out" }),
    // The detail names the failure class only: never a key reference, path or key material.
    Effect.catch((error): Effect.Effect<ReadinessCheck> =>
      Effect.succeed({ name: "secret_adapter", status: "error", detail: error._tag }))
  )

/**
 * `/readyz` `secret_adapter`: an envelope encrypt/decrypt round trip with the configured keys, and the deployment's
 * key probe opened with them (a split process with another key is not ready); cached briefly.
 */
export const secretAdapterCheck: Effect.Effect<ReadinessCheck, never, SecretAdapter | DeploymentMarkers> = Effect.gen(function*() {
  const adapter = yield* SecretAdapter
  const markers = yield* DeploymentMarkers
  const now = yield* Clock.currentTimeMillis
  const cached = cache.get(adapter)
  if (cached !== undefined && now - cached.at < PROBE_CACHE_MS) return cached.check
  const check = yield* probe(adapter, markers)
  cache.set(adapter, { at: now, check })
  return check
})
