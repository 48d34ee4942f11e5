import { Context } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { OrgPrincipal, Principal } from "./Auth.ts"
import { TokenScope } from "./Auth.ts"
import * as ApiError from "./ApiError.ts"

/** What every API group shares: the bearer-token middleware with its scopes (error wire forms: ApiError.ts). */

// ---------------------------------------------------------------------------------------------------------------
// Authorization: who may call a route is declared next to it, as a `RequiredScopes` annotation.

/**
 * The authenticated org-bound caller, provided by `Authentication` to every tenant handler. Tenant routes never see a
 * platform operator (the middleware answers it 403), so handlers scope every read and write by `orgId`.
 */
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, OrgPrincipal>()("cowork/Api/CurrentPrincipal") {}

/**
 * The authenticated caller of an operator route (`OperatorAuthentication`): an org principal, scoped to its org's
 * objects, or a platform operator. Handlers branch on `kind`.
 */
export class CurrentCaller extends Context.Service<CurrentCaller, Principal>()("cowork/Api/CurrentCaller") {}

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

/** Tenant routes: org principals only (a platform operator gets 403), with the route's scopes. */
export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: CurrentPrincipal
}>()("cowork/Api/Authentication", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [ApiError.Unauthorized, ApiError.Forbidden, ApiError.RateLimited]
}) {}

/**
 * Operator routes (bearer tokens only, never a browser session): org principals with the route's scopes, limited to
 * their org's objects, and platform operators.
 */
export class OperatorAuthentication extends HttpApiMiddleware.Service<OperatorAuthentication, {
  provides: CurrentCaller
}>()("cowork/Api/OperatorAuthentication", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [ApiError.Unauthorized, ApiError.Forbidden, ApiError.RateLimited]
}) {}
