import { Api, BadRequest, CurrentPrincipal, Unavailable } from "@cowork/domain"
import { ModelProxy } from "@cowork/runtime"
import { ByokStore, ProviderAddress } from "@cowork/services"
import { Config, Effect, Redacted } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { actorOf, recordAudit } from "./AuditHandlers.ts"

/**
 * BYOK routes: the org's provider keys, sealed by the store, read back as metadata only. A base URL must be https
 * (plain http only with OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP=true, for local model servers), may not carry
 * credentials, and its host must resolve to public addresses only (`ProviderAddress`: no loopback, private,
 * link-local, CGNAT, multicast or unspecified address, unless listed in OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS); the
 * validate call checks again on the connection it makes. `validate` makes one bounded call with the key and records
 * its health.
 */

const secretAdapterDown = () => new Unavailable({ message: "the secret adapter is unavailable; retry later", retryAfterSeconds: 5 })

/** 400 naming `baseUrl` for a provider host that is not public (and not allowed by the operator). */
const refusedBaseUrl = (refused: ProviderAddress.ProviderAddressRefused) =>
  new BadRequest({ message: `baseUrl refused: ${refused.message}`, field: "baseUrl" })

const checkBaseUrl = (raw: string | undefined, allowHttp: boolean, allowedHosts: ReadonlySet<string>) =>
  Effect.gen(function*() {
    if (raw === undefined) return undefined
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      return yield* new BadRequest({ message: "baseUrl is not a URL", field: "baseUrl" })
    }
    if (url.protocol !== "https:" && !(allowHttp && url.protocol === "http:")) {
      return yield* new BadRequest({ message: "baseUrl must be an https URL", field: "baseUrl" })
    }
    if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
      return yield* new BadRequest({ message: "baseUrl may not carry credentials, a query or a fragment", field: "baseUrl" })
    }
    yield* ProviderAddress.checkHost(url.hostname, allowedHosts).pipe(Effect.mapError(refusedBaseUrl))
    return url.toString().replace(/\/$/, "")
  })

export const layer = HttpApiBuilder.group(Api, "byok", Effect.fn(function*(handlers) {
  const byok = yield* ByokStore
  const allowHttp = yield* Config.Boolean("OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP").pipe(Config.withDefault(false))
  const allowedHosts = yield* ProviderAddress.allowedHostsConfig

  return handlers
    .handle("list", () =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { keys: yield* byok.list(principal.orgId) }
      }))
    .handle("store", ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const baseUrl = yield* checkBaseUrl(payload.baseUrl, allowHttp, allowedHosts)
        if (baseUrl === undefined && ModelProxy.DEFAULT_BASE_URLS[params.provider] === undefined) {
          return yield* new BadRequest({ message: `provider ${params.provider} needs a baseUrl`, field: "baseUrl" })
        }
        const previous = yield* Effect.option(byok.get(principal.orgId, params.provider))
        const key = yield* byok.put(principal.orgId, params.provider, { apiKey: Redacted.make(payload.apiKey), baseUrl }).pipe(
          Effect.catchTag("SecretAdapterUnavailable", () => Effect.fail(secretAdapterDown()))
        )
        yield* Effect.logInfo("byok key stored").pipe(Effect.annotateLogs({ provider: params.provider, fingerprint: key.fingerprint }))
        // Who set or replaced which provider's key, identified by fingerprint only (never the key).
        yield* recordAudit({
          orgId: principal.orgId,
          actor: actorOf(principal),
          action: previous._tag === "Some" ? "byok.rotated" : "byok.set",
          target: `byok:${params.provider}`,
          details: {
            fingerprint: key.fingerprint,
            ...(previous._tag === "Some" ? { previousFingerprint: previous.value.fingerprint } : {}),
            ...(baseUrl === undefined ? {} : { baseUrl })
          }
        })
        return { key }
      }))
    .handle("remove", ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const removed = yield* byok.get(principal.orgId, params.provider)
        yield* byok.remove(principal.orgId, params.provider)
        yield* Effect.logInfo("byok key deleted").pipe(Effect.annotateLogs({ provider: params.provider }))
        yield* recordAudit({
          orgId: principal.orgId,
          actor: actorOf(principal),
          action: "byok.deleted",
          target: `byok:${params.provider}`,
          details: { fingerprint: removed.fingerprint }
        })
        return { deleted: true }
      }))
    .handle("validate", ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const upstream = yield* ModelProxy.revealFromByok(byok)(principal.orgId, params.provider).pipe(
          Effect.catch((failure) =>
            Effect.gen(function*() {
              if (failure.reason === "not_configured") {
                // No key at all is a 404; a key without a usable base URL is reported like a failed call.
                yield* byok.get(principal.orgId, params.provider)
              }
              if (failure.reason === "unavailable") return yield* secretAdapterDown()
              return { failed: failure.reason } as const
            })
          )
        )
        const audited = (details: { readonly ok: boolean; readonly upstreamStatus?: number; readonly reason?: string }) =>
          recordAudit({
            orgId: principal.orgId,
            actor: actorOf(principal),
            action: "byok.validated",
            target: `byok:${params.provider}`,
            details
          })
        if ("failed" in upstream) {
          yield* byok.setHealth(principal.orgId, params.provider, "failing")
          yield* audited({ ok: false, reason: upstream.failed })
          return {
            key: yield* byok.get(principal.orgId, params.provider),
            ok: false,
            message: `the stored key could not be used (${upstream.failed})`
          }
        }
        const status = yield* ModelProxy.probeUpstream(upstream, allowedHosts).pipe(
          Effect.tapError(() =>
            Effect.andThen(byok.setHealth(principal.orgId, params.provider, "failing"), audited({ ok: false, reason: "address_refused" }))
          ),
          Effect.mapError(refusedBaseUrl)
        )
        const ok = status !== undefined && status >= 200 && status < 300
        yield* byok.setHealth(principal.orgId, params.provider, ok ? "ok" : "failing")
        yield* audited({ ok, ...(status === undefined ? {} : { upstreamStatus: status }) })
        return {
          key: yield* byok.get(principal.orgId, params.provider),
          ok,
          ...(status === undefined ? {} : { upstreamStatus: status }),
          message: ok
            ? "the provider accepted the key"
            : status === undefined
            ? "the provider could not be reached"
            : `the provider answered ${status}`
        }
      }))
}))
