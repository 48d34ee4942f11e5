import type { ChannelProvider } from "@cowork/channels"
import { resolveOrgSecretRef, SecretRefError, sha256Hex } from "@cowork/services"
import { Clock, Context, Data, Effect, Layer } from "effect"
import { type BindingCredentialRef, CloudChannels, type CloudUnavailable } from "./CloudChannels.ts"
import { GatewayConfig } from "./GatewayConfig.ts"

/** A binding's `credentialRef` could not be turned into a credential here (names the reference, never a value). */
export class CredentialUnresolved extends Data.TaggedError("CredentialUnresolved")<{
  readonly channelBindingId: string
  readonly message: string
}> {}

/** The provider a delivery goes out through; `own`: built with the binding's own credential. */
export interface BoundProvider {
  readonly provider: ChannelProvider
  readonly own: boolean
}

/**
 * Per-binding credentials. A binding whose `credentialRef` is set (stored in the cloud as a reference; the cloud
 * never sees the credential) sends through its provider's configuration with that credential in place of the
 * provider's own: the bot token (Telegram, Slack), the SMTP password (email), the outbound signing secret (webhook).
 * The org sets the reference, so the gateway resolves it only inside that org's namespace (the org comes from the
 * cloud with the binding): `env:OPEN_COWORK_GATEWAY_CRED_<ORGKEY>__NAME` or `file:name` under
 * `<OPEN_COWORK_GATEWAY_CREDENTIALS_DIR>/<orgId>/` — never the gateway's own token, a provider's shared credential,
 * another org's credential or an arbitrary path (a refused reference is reported like an unresolved one, naming
 * the rule). A resolved value is resolved again once older than OPEN_COWORK_GATEWAY_CREDENTIAL_TTL_MS — so a
 * rotated file (a mounted secret) or a changed reference is picked up without a restart. A binding without one
 * uses the provider's configured credential. A binding's `inboundCredentialRef` (its own inbound signing secret) is
 * resolved the same way, for `/webhooks/:providerId/:bindingId`.
 */
export class BindingCredentials extends Context.Service<BindingCredentials, {
  /** Undefined when this gateway has no provider with that id. */
  readonly providerFor: (providerId: string, channelBindingId: string) => Effect.Effect<BoundProvider | undefined, CredentialUnresolved | CloudUnavailable>
  /**
   * The binding's own inbound secret (`inboundCredentialRef`, resolved in the org's namespace like `credentialRef`),
   * or undefined when the binding is not one of this provider's or has none.
   */
  readonly inboundSecret: (providerId: string, channelBindingId: string) => Effect.Effect<string | undefined, CredentialUnresolved | CloudUnavailable>
  /** Every credential resolved so far (rotated-away ones included): never in an answer, a log line or a metric. */
  readonly secrets: () => ReadonlyArray<string>
}>()("cowork/gateway/BindingCredentials") {
  static readonly layer = Layer.effect(
    BindingCredentials,
    Effect.gen(function*() {
      const config = yield* GatewayConfig
      const cloud = yield* CloudChannels
      const resolved = new Map<string, { readonly value: string; readonly at: number }>()
      const built = new Map<string, { readonly digest: string; readonly provider: ChannelProvider }>()
      const secrets = new Set<string>()

      const resolve = (bound: BindingCredentialRef, channelBindingId: string, field = "credentialRef") =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          // Keyed by org too: the same reference names a different credential (or none) in another org's namespace.
          const key = `${bound.orgId}\u0000${bound.credentialRef}`
          const hit = resolved.get(key)
          if (hit !== undefined && now - hit.at < config.credentialTtlMs) return hit.value
          const value = yield* Effect.try({
            try: () =>
              resolveOrgSecretRef(bound.credentialRef, bound.orgId, `${field} of binding ${channelBindingId}`, {
                env: config.secretEnv,
                credentialsDir: config.credentialsDir
              }),
            catch: (error) =>
              new CredentialUnresolved({
                channelBindingId,
                message: error instanceof SecretRefError ? error.message : `${field} of binding ${channelBindingId} cannot be resolved`
              })
          })
          secrets.add(value)
          resolved.set(key, { value, at: now })
          return value
        })

      yield* Effect.addFinalizer(() => Effect.forEach([...built.values()], (entry) => entry.provider.close, { discard: true }))

      return BindingCredentials.of({
        providerFor: (providerId, channelBindingId) =>
          Effect.gen(function*() {
            const entry = config.providers.find((candidate) => candidate.config.id === providerId)
            if (entry === undefined) return undefined
            const bound = yield* cloud.credentialRef(channelBindingId)
            if (bound === null) return { provider: entry.provider, own: false }
            const credential = yield* resolve(bound, channelBindingId)
            const digest = sha256Hex(credential)
            const key = `${providerId}\u0000${channelBindingId}`
            const current = built.get(key)
            if (current?.digest === digest) return { provider: current.provider, own: true }
            // A rotated credential: the new client replaces the old one, which is closed.
            const provider = entry.withCredential(credential)
            built.set(key, { digest, provider })
            if (current !== undefined) yield* current.provider.close
            return { provider, own: true }
          }),
        inboundSecret: (providerId, channelBindingId) =>
          Effect.gen(function*() {
            const bound = yield* cloud.credentialRef(channelBindingId, "inbound")
            if (bound === null || bound.providerId !== providerId) return undefined
            return yield* resolve(bound, channelBindingId, "inboundCredentialRef")
          }),
        secrets: () => [...secrets]
      })
    })
  )
}
