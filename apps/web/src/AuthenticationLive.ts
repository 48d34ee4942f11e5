import {
  Authentication,
  CurrentCaller,
  CurrentPrincipal,
  Forbidden,
  OperatorAuthentication,
  type Principal,
  requiredScopes,
  Unauthorized
} from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { type Context, Effect, Layer, Redacted } from "effect"
import { BrowserAuth } from "./BrowserAuth.ts"
import { RequestLimits } from "./RequestLimits.ts"
import { TokenVerifier } from "./TokenVerifier.ts"

/**
 * Bearer-token authentication for every protected route: 401 for a missing/unknown/expired/revoked token, 403
 * when the token lacks every scope the route's `RequiredScopes` annotation accepts, and 403 for a platform operator
 * on a tenant route (tenant routes act inside one org; a platform operator belongs to none).
 */
const makeAuthenticator = Effect.gen(function*() {
  const tokens = yield* TokenVerifier
  const metrics = yield* Metrics
  const limits = yield* RequestLimits
  // Per request: no call-site stack capture (Effect.fn's), only the span.
  return Effect.fnUntraced(function*(
    credential: Redacted.Redacted<string>,
    groupAnnotations: Context.Context<never>,
    endpointAnnotations: Context.Context<never>,
    audience: "org" | "operator"
  ) {
    const missing = Redacted.value(credential) === ""
    const principal: Principal = yield* tokens.authenticate(credential).pipe(
      // The reason is counted, never shown: every refused bearer token gets the same generic 401.
      Effect.catchTag("Unauthorized", (error) =>
        metrics.inc("open_cowork_cloud_auth_failures_total", {
          reason: error.reason ?? (missing ? "missing_credentials" : "invalid_token")
        }).pipe(
          // A presented credential that fails counts toward the source's back-off; a missing one does not.
          Effect.andThen(missing ? Effect.void : limits.noteAuthFailure),
          Effect.andThen(Effect.fail(new Unauthorized({ message: "missing or invalid bearer token" })))
        ))
    )
    const accepted = requiredScopes(groupAnnotations, endpointAnnotations)
    if (!accepted.some((scope) => principal.scopes.includes(scope))) {
      yield* metrics.inc("open_cowork_cloud_auth_failures_total", { reason: "forbidden_scope" })
      return yield* new Forbidden({ message: "the token lacks the scope this route requires", requiredScopes: accepted })
    }
    if (audience === "org" && principal.kind !== "org") {
      yield* metrics.inc("open_cowork_cloud_auth_failures_total", { reason: "forbidden_principal" })
      return yield* new Forbidden({ message: "a platform operator token cannot act inside an org; use an org token" })
    }
    yield* limits.admit(principal)
    return principal
  }, Effect.withSpan("Authentication.bearer"))
})

/** Tenant routes: provides the org principal, from a bearer token or (without one) a browser session cookie. */
const layerTenant = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const authenticate = yield* makeAuthenticator
    const browser = yield* BrowserAuth
    const limits = yield* RequestLimits
    return Authentication.of({
      bearer: Effect.fnUntraced(function*(httpEffect, { credential, endpoint, group }) {
        // A source in authentication back-off is refused before any credential is looked at.
        yield* limits.checkSource
        // A request with a bearer token is never cookie-authenticated; one without may carry a browser session. A
        // tenant route that operator tokens may also call (an abort, the audit log) is still a tenant route for a
        // browser session: its web / admin scopes decide, the operator scope is for tokens only.
        if (Redacted.value(credential) === "") {
          const tenantScopes = requiredScopes(group.annotations, endpoint.annotations).filter((scope) => scope !== "operator")
          const viaCookie = yield* browser.principalFromCookie(tenantScopes)
          if (viaCookie !== undefined) {
            yield* limits.admit(viaCookie)
            return yield* Effect.provideService(httpEffect, CurrentPrincipal, viaCookie)
          }
        }
        const principal = yield* authenticate(credential, group.annotations, endpoint.annotations, "org")
        if (principal.kind !== "org") return yield* Effect.die(new Error("unreachable: tenant routes refuse platform principals"))
        return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal)
      }, Effect.withSpan("Authentication.tenant"))
    })
  })
)

/** Operator routes (bearer tokens only, never a browser session): an org principal or a platform operator. */
const layerOperator = Layer.effect(
  OperatorAuthentication,
  Effect.gen(function*() {
    const authenticate = yield* makeAuthenticator
    const browser = yield* BrowserAuth
    const limits = yield* RequestLimits
    return OperatorAuthentication.of({
      bearer: Effect.fn("Authentication.operator")(function*(httpEffect, { credential, endpoint, group }) {
        yield* limits.checkSource
        // A browser session never reaches an operator route: BrowserAuth answers its cookie with a 403 that says so.
        if (Redacted.value(credential) === "") {
          yield* browser.principalFromCookie(requiredScopes(group.annotations, endpoint.annotations))
        }
        const principal = yield* authenticate(credential, group.annotations, endpoint.annotations, "operator")
        return yield* Effect.provideService(httpEffect, CurrentCaller, principal)
      })
    })
  })
)

export const layer = Layer.merge(layerTenant, layerOperator)
