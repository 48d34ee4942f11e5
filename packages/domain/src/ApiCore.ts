import { Context, Schema } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { Principal } from "./Auth.ts"
import { TokenScope } from "./Auth.ts"

/** What every API group shares: the error shape and statuses, and the bearer-token middleware with its scopes. */

/** The body of every error response: `{"error": {"code", "message", "details"?}}`. */
export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
})
export type ErrorBody = typeof ErrorBody.Type

export class ApiBadRequest extends Schema.Error<ApiBadRequest>("ApiBadRequest")({ error: ErrorBody }, { httpApiStatus: 400 }) {}
export class ApiUnauthorized extends Schema.Error<ApiUnauthorized>("ApiUnauthorized")({ error: ErrorBody }, { httpApiStatus: 401 }) {}
export class ApiForbidden extends Schema.Error<ApiForbidden>("ApiForbidden")({ error: ErrorBody }, { httpApiStatus: 403 }) {}
export class ApiNotFound extends Schema.Error<ApiNotFound>("ApiNotFound")({ error: ErrorBody }, { httpApiStatus: 404 }) {}
export class ApiConflict extends Schema.Error<ApiConflict>("ApiConflict")({ error: ErrorBody }, { httpApiStatus: 409 }) {}
export class ApiPayloadTooLarge extends Schema.Error<ApiPayloadTooLarge>("ApiPayloadTooLarge")({ error: ErrorBody }, { httpApiStatus: 413 }) {}
/** 429: `Retry-After` (seconds) on the response and `retryAfterMs` in the body. */
export class ApiRateLimited extends Schema.Error<ApiRateLimited>("ApiRateLimited")({
  error: ErrorBody,
  retryAfterMs: Schema.Number
}, { httpApiStatus: 429 }) {}
export class ApiUnavailable extends Schema.Error<ApiUnavailable>("ApiUnavailable")({ error: ErrorBody }, { httpApiStatus: 503 }) {}

/** Builds the wire error for a status from a code, message and optional details. */
export const apiError = {
  badRequest: (message: string, details?: Record<string, unknown>) => new ApiBadRequest({ error: { code: "bad_request", message, details } }),
  unauthorized: (message: string) => new ApiUnauthorized({ error: { code: "unauthorized", message } }),
  forbidden: (message: string, details?: Record<string, unknown>) => new ApiForbidden({ error: { code: "forbidden", message, details } }),
  notFound: (message: string) => new ApiNotFound({ error: { code: "not_found", message } }),
  conflict: (message: string, details?: Record<string, unknown>) => new ApiConflict({ error: { code: "conflict", message, details } }),
  payloadTooLarge: (message: string, details?: Record<string, unknown>) =>
    new ApiPayloadTooLarge({ error: { code: "payload_too_large", message, details } }),
  unavailable: (message: string) => new ApiUnavailable({ error: { code: "unavailable", message } })
}

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
  error: [ApiUnauthorized, ApiForbidden]
}) {}
