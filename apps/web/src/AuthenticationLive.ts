import { Authentication, CurrentPrincipal, Forbidden, requiredScopes } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Tokens } from "@cowork/services"
import { Effect, Layer, Redacted } from "effect"
import { BrowserAuth } from "./BrowserAuth.ts"

/**
 * Bearer-token authentication for every protected route: 401 for a missing/unknown/expired/revoked token, 403
 * when the token lacks every scope the route's `RequiredScopes` annotation accepts.
 */
export const layer = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const metrics = yield* Metrics
    const browser = yield* BrowserAuth
    return Authentication.of({
      bearer: Effect.fn("Authentication.bearer")(function*(httpEffect, { credential, endpoint, group }) {
        const missing = Redacted.value(credential) === ""
        // A request with a bearer token is never cookie-authenticated; one without may carry a browser session.
        if (missing) {
          const viaCookie = yield* browser.principalFromCookie(requiredScopes(group.annotations, endpoint.annotations))
          if (viaCookie !== undefined) return yield* Effect.provideService(httpEffect, CurrentPrincipal, viaCookie)
        }
        const principal = yield* tokens.authenticate(credential).pipe(
          // The reason is counted, never shown: the wire form of Unauthorized has one generic body.
          Effect.tapError((error) =>
            metrics.inc("open_cowork_cloud_auth_failures_total", {
              reason: error.reason ?? (missing ? "missing_credentials" : "invalid_token")
            }))
        )
        const accepted = requiredScopes(group.annotations, endpoint.annotations)
        if (!accepted.some((scope) => principal.scopes.includes(scope))) {
          yield* metrics.inc("open_cowork_cloud_auth_failures_total", { reason: "forbidden_scope" })
          return yield* new Forbidden({ message: "the token lacks the scope this route requires", requiredScopes: accepted })
        }
        return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal)
      })
    })
  })
)
