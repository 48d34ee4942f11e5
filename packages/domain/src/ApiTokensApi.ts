import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { ApiTokenView, TokenScope } from "./Auth.ts"
import { Id, Text } from "./Input.ts"

/** At most a year; a token without `expiresInSeconds` lives until revoked. */
const MAX_TOKEN_LIFETIME_SECONDS = 365 * 24 * 3600

const CreateApiTokenBody = Schema.Struct({
  name: Text(100).check(Schema.isMinLength(1)),
  /** At most the scopes of the token (or member) creating it. */
  scopes: Schema.Array(TokenScope).check(Schema.isMinLength(1), Schema.isMaxLength(4)),
  expiresInSeconds: Schema.optional(
    Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: MAX_TOKEN_LIFETIME_SECONDS }))
  )
})

/** Create: the one response that carries the plaintext `occ_<id>_<secret>`. */
const IssuedApiToken = Schema.Struct({ token: ApiTokenView, secret: Schema.String })

/** The org's API tokens (`admin` scope): list (metadata only), create (plaintext once), revoke. */
export class ApiTokensApi extends HttpApiGroup.make("apiTokens")
  .add(
    HttpApiEndpoint.get("list", "/api/api-tokens", { success: Schema.Struct({ tokens: Schema.Array(ApiTokenView) }) })
      .annotate(OpenApi.Description, "The org's tokens, newest first, revoked ones included: id, name, scopes, created/expires/last-used/revoked. Never a secret."),
    HttpApiEndpoint.post("create", "/api/api-tokens", {
      payload: CreateApiTokenBody,
      success: IssuedApiToken.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.Forbidden]
    }).annotate(OpenApi.Description, "The plaintext `secret` is in this response only. A token can grant at most the scopes its creator holds."),
    HttpApiEndpoint.delete("revoke", "/api/api-tokens/:id", {
      params: { id: Id },
      success: Schema.Struct({ token: ApiTokenView }),
      error: ApiError.NotFound
    }).annotate(OpenApi.Description, "Revokes at once (idempotent): the token is refused from now on and its open event streams end within seconds.")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["admin"])
  .annotateMerge(OpenApi.annotations({ title: "API tokens", description: "The org's API tokens: list, create, revoke" }))
{}
