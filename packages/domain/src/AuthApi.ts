import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { TokenScope } from "./Auth.ts"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { MemberRole } from "./Identity.ts"
import { Text } from "./Input.ts"

const Bounded = Text

const TokenLoginBody = Schema.Struct({ token: Bounded(300) })

const BrowserSessionStarted = Schema.Struct({
  orgId: Schema.String,
  accountId: Schema.String,
  role: MemberRole,
  /** Send it as `X-CSRF-Token` on every mutation made with the session cookie. */
  csrfToken: Schema.String,
  idleExpiresAt: Schema.String,
  absoluteExpiresAt: Schema.String
})

/**
 * Sign-in routes (no bearer token): the OIDC authorization code flow with PKCE, state and nonce; the owner-token
 * login of the local mode; logout. They answer with redirects and `Set-Cookie`, so they stay outside `/api`.
 */
export class AuthApi extends HttpApiGroup.make("auth", { topLevel: true })
  .add(
    HttpApiEndpoint.get("login", "/auth/login", {
      query: { returnTo: Schema.optional(Bounded(400)) },
      success: HttpApiSchema.Empty(302),
      error: [ApiError.NotFound, ApiError.Unavailable]
    }).annotate(OpenApi.Description, "Redirects to the identity provider (code flow + PKCE); `returnTo` is a same-site path to come back to."),
    HttpApiEndpoint.get("callback", "/auth/callback", {
      query: {
        code: Schema.optional(Bounded(2000)),
        state: Schema.optional(Bounded(400)),
        iss: Schema.optional(Bounded(400)),
        error: Schema.optional(Bounded(200)),
        error_description: Schema.optional(Bounded(1000))
      },
      success: HttpApiSchema.Empty(302),
      error: [ApiError.BadRequest, ApiError.Unauthorized, ApiError.Forbidden, ApiError.NotFound, ApiError.Unavailable]
    }).annotate(OpenApi.Description, "The IdP's redirect: validates state, nonce and the ID token, opens a browser session (cookie) and redirects to `returnTo`."),
    HttpApiEndpoint.post("logout", "/auth/logout", {
      query: { everywhere: Schema.optional(Schema.Literals(["true", "false"])) },
      success: HttpApiSchema.NoContent,
      error: [ApiError.Forbidden]
    }).annotate(OpenApi.Description, "Ends this browser session (`?everywhere=true`: every session of the account). Needs `X-CSRF-Token` and a same-origin request."),
    HttpApiEndpoint.post("tokenLogin", "/auth/token-login", {
      payload: TokenLoginBody,
      success: BrowserSessionStarted,
      error: [ApiError.BadRequest, ApiError.Unauthorized, ApiError.Forbidden, ApiError.NotFound, ApiError.RateLimited]
    }).annotate(OpenApi.Description, "Local mode: exchanges an org token with the `admin` scope (the owner token `cowork up` printed) for a browser session cookie.")
  )
  .annotateMerge(OpenApi.annotations({ title: "Sign-in", description: "OIDC sign-in, owner-token login, logout" }))
{}

const FeatureVerdict = Schema.Struct({ supported: Schema.Boolean, reason: Schema.optional(Schema.String) })

export const PublicConfig = Schema.Struct({
  authMode: Schema.Literals(["oidc", "local"]),
  loginUrl: Schema.NullOr(Schema.String),
  tokenLoginUrl: Schema.NullOr(Schema.String),
  logoutUrl: Schema.String,
  features: Schema.Record(Schema.String, Schema.Boolean),
  version: Schema.String
})
export type PublicConfig = typeof PublicConfig.Type

export const Workspace = Schema.Struct({
  org: Schema.Struct({ id: Schema.String }),
  principal: Schema.Struct({
    kind: Schema.Literals(["token", "browser_session"]),
    id: Schema.String,
    accountId: Schema.NullOr(Schema.String),
    email: Schema.NullOr(Schema.String)
  }),
  role: Schema.NullOr(MemberRole),
  scopes: Schema.Array(TokenScope),
  /** Only for a browser session: the token to send as `X-CSRF-Token` on mutations. */
  csrfToken: Schema.NullOr(Schema.String),
  features: Schema.Record(Schema.String, FeatureVerdict)
})
export type Workspace = typeof Workspace.Type

/** `GET /api/config`: public bootstrap, called first by every client. */
export class ConfigApi extends HttpApiGroup.make("config")
  .add(HttpApiEndpoint.get("config", "/api/config", { success: PublicConfig }))
  .annotateMerge(OpenApi.annotations({ title: "Config", description: "Public bootstrap: auth mode, login URL, feature flags, version" }))
{}

/** `GET /api/workspace`: who the caller is, in which org, with what role and scopes. */
export class WorkspaceApi extends HttpApiGroup.make("workspace")
  .add(HttpApiEndpoint.get("workspace", "/api/workspace", { success: Workspace }))
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Workspace", description: "The caller's org, principal, role, scopes and feature verdicts" }))
{}
