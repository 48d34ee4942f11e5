import { Context } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { Principal } from "./Auth.ts"
import { TokenScope } from "./Auth.ts"
import * as ApiError from "./ApiError.ts"

/** What every API group shares: the bearer-token middleware with its scopes (error wire forms: ApiError.ts). */

// ---------------------------------------------------------------------------------------------------------------
// Authorization: who may call a route is declared next to it, as a `RequiredScopes` annotation.

/** The authenticated caller, provided by `Authentication` to every protected handler. */
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Principal>()("cowork/Api/CurrentPrincipal") {}

/** Any one of these scopes grants access. Unannotated protected routes require `admin` (fail closed). */
export const RequiredScopes = Context.Reference<ReadonlyArray<TokenScope>>("cowork/Api/RequiredScopes", {
  defaultValue: () => ["admin"]
})

/** The scopes a route needs: the endpoint's annotation, else its group's, else the fail-closed default. */
export const requiredScopes = (
  groupAnnotations: Context.Context<never>,
  endpointAnnotations: Context.Context<never>
): ReadonlyArray<TokenScope> =>
  Context.getOrUndefined(endpointAnnotations, RequiredScopes)
    ?? Context.getOrUndefined(groupAnnotations, RequiredScopes)
    ?? RequiredScopes.defaultValue()

export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: CurrentPrincipal
}>()("cowork/Api/Authentication", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [ApiError.Unauthorized, ApiError.Forbidden]
}) {}
