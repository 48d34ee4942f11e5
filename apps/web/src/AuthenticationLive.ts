import { apiError, Authentication, CurrentPrincipal, requiredScopes } from "@cowork/domain"
import { Tokens } from "@cowork/services"
import { Effect, Layer } from "effect"

/**
 * Bearer-token authentication for every protected route: 401 for a missing/unknown/expired/revoked token, 403
 * when the token lacks every scope the route's `RequiredScopes` annotation accepts.
 */
export const layer = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const tokens = yield* Tokens
    return Authentication.of({
      bearer: Effect.fn("Authentication.bearer")(function*(httpEffect, { credential, endpoint, group }) {
        const principal = yield* tokens.authenticate(credential).pipe(
          Effect.catchTag("Unauthorized", () => Effect.fail(apiError.unauthorized("missing or invalid bearer token")))
        )
        const accepted = requiredScopes(group.annotations, endpoint.annotations)
        if (!accepted.some((scope) => principal.scopes.includes(scope))) {
          return yield* apiError.forbidden("the token lacks the scope this route requires", { requiredScopes: accepted })
        }
        return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal)
      })
    })
  })
)
