import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { isStorableText } from "./Input.ts"

/** Provider ids: lower-case, short (`openai`, `openrouter`, …). */
const ByokProvider = Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,31}$/))

/** What a read shows of a stored key: never the key itself. */
export const ByokKey = Schema.Struct({
  provider: Schema.String,
  last4: Schema.String,
  fingerprint: Schema.String,
  status: Schema.Literal("active"),
  health: Schema.Literals(["unknown", "ok", "failing"]),
  updatedAt: Schema.String
})
export type ByokKey = typeof ByokKey.Type

const MAX_BYOK_KEY_LENGTH = 4_096

const ByokStoreBody = Schema.Struct({
  apiKey: Schema.String.check(Schema.isMinLength(8), Schema.isMaxLength(MAX_BYOK_KEY_LENGTH), isStorableText),
  /** The provider's OpenAI-compatible base URL (`…/v1`); the provider's default when absent. */
  baseUrl: Schema.optional(Schema.String.check(Schema.isMaxLength(2_048), isStorableText))
})

const ByokValidation = Schema.Struct({
  key: ByokKey,
  ok: Schema.Boolean,
  /** The provider's HTTP status for the test call (absent when it could not be reached). */
  upstreamStatus: Schema.optional(Schema.Number),
  message: Schema.String
})

const providerParams = { provider: ByokProvider }

export class ByokApi extends HttpApiGroup.make("byok")
  .add(
    HttpApiEndpoint.get("list", "/api/byok", {
      success: Schema.Struct({ keys: Schema.Array(ByokKey) })
    }).annotate(OpenApi.Description, "The org's stored provider keys, metadata only: provider, last4, fingerprint, status, health, updatedAt."),
    HttpApiEndpoint.post("store", "/api/byok/:provider", {
      params: providerParams,
      payload: ByokStoreBody,
      success: Schema.Struct({ key: ByokKey }),
      error: [ApiError.BadRequest, ApiError.Unavailable]
    }).annotate(OpenApi.Description, "Stores (or replaces) the org's key for a provider, sealed with the org's data key; answers its metadata only.")
      .annotate(RequiredScopes, ["admin"]),
    HttpApiEndpoint.delete("remove", "/api/byok/:provider", {
      params: providerParams,
      success: Schema.Struct({ deleted: Schema.Boolean }),
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, ["admin"]),
    HttpApiEndpoint.post("validate", "/api/byok/:provider/validate", {
      params: providerParams,
      success: ByokValidation,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Unavailable]
    }).annotate(
      OpenApi.Description,
      "One bounded test call (GET <baseUrl>/models, 10 s) with the stored key, added the way the worker's model proxy adds it; records the key's health."
    ).annotate(RequiredScopes, ["admin"])
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "BYOK", description: "Bring-your-own provider keys (metadata-only reads)" }))
{}
