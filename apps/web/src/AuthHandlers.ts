import { Api, BadRequest, SERVICE_VERSION, CurrentPrincipal, Forbidden, type MemberRole, NotFound, type OrgPrincipal, type PublicConfig, Unauthorized, Unavailable } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Identity, Tokens } from "@cowork/services"
import { Effect, Layer, Redacted } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import * as OpenId from "openid-client"
import { recordAudit } from "./AuditHandlers.ts"
import { type AuthSettings, strongestRole } from "./AuthSettings.ts"
import { BrowserAuth } from "./BrowserAuth.ts"
import { RequestLimits } from "./RequestLimits.ts"
import * as OidcClient from "./OidcClient.ts"

/** How long an OIDC login may stay at the IdP before its state / nonce / PKCE verifier are forgotten. */
const LOGIN_TTL_MS = 10 * 60_000

/** Only a same-site path may be a post-login destination (no open redirect). */
const safeReturnTo = (raw: string | undefined): string =>
  raw !== undefined && raw.startsWith("/") && !raw.startsWith("//") && !raw.includes("\\") && !/[\u0000-\u001f]/.test(raw)
    ? raw
    : "/"

const oidcNotConfigured = () => new NotFound({ message: "OIDC sign-in is not configured (OPEN_COWORK_CLOUD_OIDC_ISSUER)" })

const idpUnavailable = () => new Unavailable({ message: "the identity provider is unreachable; try again shortly", retryAfterSeconds: 5 })

/** `/auth/login`, `/auth/callback`, `/auth/logout`, `/auth/token-login`. */
const authLayer = HttpApiBuilder.group(Api, "auth", Effect.fn(function*(handlers) {
  const browser = yield* BrowserAuth
  const identity = yield* Identity
  const tokens = yield* Tokens
  const metrics = yield* Metrics
  const limits = yield* RequestLimits
  const settings = browser.settings
  const oidc = settings.oidc === undefined ? undefined : OidcClient.make(settings.oidc)
  const redirectUri = new URL("/auth/callback", settings.publicUrl).toString()
  const signIn = (method: "oidc" | "token_login", outcome: "ok" | "refused" | "not_a_member" | "idp_unavailable") =>
    metrics.inc("open_cowork_cloud_sign_ins_total", { method, outcome })

  /** The org and role an OIDC identity signs in with: a mapped IdP group, an existing membership, an allowed domain. */
  const resolveMembership = Effect.fn("Auth.resolveMembership")(function*(identityClaims: OidcClient.OidcIdentity) {
    const oidcSettings = settings.oidc!
    const orgId = oidcSettings.orgId ?? (yield* identity.defaultOrgId)
    if (orgId === undefined) return undefined
    const account = yield* identity.upsertAccount({
      issuer: identityClaims.issuer,
      subject: identityClaims.subject,
      email: identityClaims.email,
      name: identityClaims.name
    })
    const mapped = strongestRole(
      identityClaims.groups.flatMap((group) => {
        const role = oidcSettings.roleMap.get(group)
        return role === undefined ? [] : [role]
      })
    )
    const existing = yield* identity.role(orgId, account.id)
    if (mapped !== undefined && mapped !== existing) {
      yield* identity.setRole(orgId, account.id, mapped)
    } else if (mapped === undefined && existing === undefined) {
      // An explicit invitation for the verified email wins; else an allowed domain makes a member.
      const invited = identityClaims.emailVerified && identityClaims.email !== null
        ? yield* identity.acceptInvitation(orgId, identityClaims.email, account.id)
        : undefined
      if (invited === undefined) {
        const domain = identityClaims.email?.split("@")[1]
        const allowed = identityClaims.emailVerified && domain !== undefined && oidcSettings.allowedDomains.includes(domain)
        if (!allowed) return undefined
        yield* identity.setRole(orgId, account.id, "member")
      }
    }
    return { orgId, accountId: account.id, role: (yield* identity.role(orgId, account.id)) ?? "member" }
  })

  return handlers.handleAll({
    login: ({ query }) =>
      Effect.gen(function*() {
        if (oidc === undefined) return yield* oidcNotConfigured()
        const pending = {
          state: OpenId.randomState(),
          nonce: OpenId.randomNonce(),
          codeVerifier: OpenId.randomPKCECodeVerifier(),
          returnTo: safeReturnTo(query.returnTo)
        }
        const url = yield* oidc.authorizationUrl({ redirectUri, ...pending }).pipe(
          Effect.tapError((error) => Effect.logWarning("OIDC discovery failed", error.cause)),
          Effect.catchTag("OidcUnavailable", () =>
            Effect.andThen(signIn("oidc", "idp_unavailable"), Effect.fail(idpUnavailable())))
        )
        const loginId = yield* identity.beginLogin(pending, LOGIN_TTL_MS)
        return browser.setLoginCookie(
          HttpServerResponse.redirect(url, { status: 302, headers: { "cache-control": "no-store" } }),
          loginId,
          LOGIN_TTL_MS
        )
      }),

    callback: ({ query }) =>
      Effect.gen(function*() {
        if (oidc === undefined) return yield* oidcNotConfigured()
        const request = yield* HttpServerRequest.HttpServerRequest
        const loginCookie = request.cookies[browser.loginCookieName]
        // Taken once whatever happens next: a replayed callback finds nothing.
        const pending = loginCookie === undefined || loginCookie === "" ? undefined : yield* identity.consumeLogin(Redacted.make(loginCookie))
        const refuse = (message: string) =>
          Effect.andThen(signIn("oidc", "refused"), Effect.fail(new Unauthorized({ message: message })))
        if (query.error !== undefined) {
          yield* Effect.logWarning("the identity provider refused the sign-in").pipe(Effect.annotateLogs({ idp_error: query.error }))
          return yield* refuse("the identity provider refused the sign-in")
        }
        if (pending === undefined) {
          yield* signIn("oidc", "refused")
          return yield* new BadRequest({ message: "no sign-in in progress in this browser, or it expired: start again at /auth/login" })
        }
        const callbackUrl = new URL(redirectUri)
        callbackUrl.search = new URL(request.url, settings.publicUrl).search
        const claims = yield* oidc.exchange({ callbackUrl, state: pending.state, nonce: pending.nonce, codeVerifier: pending.codeVerifier }).pipe(
          Effect.catchTags({
            OidcRefused: (refused) =>
              Effect.logWarning("OIDC sign-in refused").pipe(
                Effect.annotateLogs({ reason: refused.reason }),
                Effect.andThen(refuse("the sign-in could not be verified; start again at /auth/login"))
              ),
            OidcUnavailable: (error) =>
              Effect.logWarning("OIDC token exchange failed", error.cause).pipe(
                Effect.andThen(signIn("oidc", "idp_unavailable")),
                Effect.andThen(Effect.fail(idpUnavailable()))
              )
          })
        )
        const membership = yield* resolveMembership(claims)
        if (membership === undefined) {
          yield* signIn("oidc", "not_a_member")
          return yield* new Forbidden({ message: "this account is not a member of the organization; ask an admin to invite you" })
        }
        const opened = yield* identity.openSession({ ...membership, lifetimes: settings }).pipe(
          Effect.catchTag("NotAMember", () => Effect.fail(new Forbidden({ message: "this account is not a member of the organization" })))
        )
        yield* signIn("oidc", "ok")
        yield* recordAudit({
          orgId: membership.orgId,
          actor: `account:${membership.accountId}`,
          action: "auth.sign_in",
          target: `browser_session:${opened.session.id}`,
          details: { method: "oidc", role: membership.role }
        })
        return browser.clearLoginCookie(browser.setSessionCookie(
          HttpServerResponse.redirect(pending.returnTo, { status: 302, headers: { "cache-control": "no-store" } }),
          opened
        ))
      }),

    logout: ({ query }) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const cookie = browser.sessionCookie(request)
        if (cookie !== undefined) {
          const session = yield* Effect.option(identity.authenticateSession(cookie))
          if (session._tag === "Some") {
            if (!browser.csrfValid(request, Redacted.value(session.value.csrfToken))) {
              yield* metrics.inc("open_cowork_cloud_browser_auth_refusals_total", { reason: "csrf_rejected" })
              return yield* new Forbidden({ message: "cross-site request refused: send X-CSRF-Token from the same origin" })
            }
            if (query.everywhere === "true") yield* identity.revokeAccountSessions(session.value.orgId, session.value.accountId)
            else yield* identity.revokeSession(session.value.orgId, session.value.sessionId)
            yield* recordAudit({
              orgId: session.value.orgId,
              actor: `account:${session.value.accountId}`,
              action: query.everywhere === "true" ? "auth.sign_out_everywhere" : "auth.sign_out",
              target: `browser_session:${session.value.sessionId}`
            })
          }
        }
        return browser.clearSessionCookie(HttpServerResponse.empty({ status: 204 }))
      }),

    tokenLogin: ({ payload }) =>
      Effect.gen(function*() {
        if (!settings.tokenLogin) return yield* new NotFound({ message: "token login is disabled (OPEN_COWORK_CLOUD_TOKEN_LOGIN)" })
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!browser.sameSite(request)) {
          yield* metrics.inc("open_cowork_cloud_browser_auth_refusals_total", { reason: "csrf_rejected" })
          return yield* new Forbidden({ message: "cross-site sign-in refused" })
        }
        // The same back-off as bearer authentication: a blocked source is refused, a refused token counts.
        yield* limits.checkSource
        const principal = yield* tokens.authenticate(Redacted.make(payload.token)).pipe(
          Effect.catchTag("Unauthorized", () =>
            signIn("token_login", "refused").pipe(
              Effect.andThen(limits.noteAuthFailure),
              Effect.andThen(Effect.fail(new Unauthorized({ message: "missing or invalid token" })))
            ))
        )
        if (principal.kind !== "org" || !principal.scopes.includes("admin")) {
          yield* signIn("token_login", "refused")
          return yield* new Forbidden({ message: "only a token with the admin scope (the owner token) can sign a browser in" })
        }
        // One account per token: the person holding the owner token signs in as the org's owner.
        const account = yield* identity.upsertAccount({
          issuer: "cowork:token",
          subject: `${principal.orgId}/${principal.tokenId}`,
          email: null,
          name: "owner token"
        })
        const role: MemberRole = principal.scopes.includes("operator") ? "owner" : "admin"
        yield* identity.setRole(principal.orgId, account.id, role)
        // The session lives no longer than the token that opened it.
        const opened = yield* identity.openSession({
          orgId: principal.orgId,
          accountId: account.id,
          lifetimes: settings,
          sourceTokenId: principal.tokenId
        }).pipe(Effect.orDie)
        yield* signIn("token_login", "ok")
        yield* recordAudit({
          orgId: principal.orgId,
          actor: `token:${principal.tokenId}`,
          action: "auth.sign_in",
          target: `browser_session:${opened.session.id}`,
          details: { method: "token_login", role }
        })
        const body = {
          orgId: principal.orgId,
          accountId: account.id,
          role,
          csrfToken: Redacted.value(opened.csrfToken),
          idleExpiresAt: opened.session.idleExpiresAt,
          absoluteExpiresAt: opened.session.absoluteExpiresAt
        }
        return browser.setSessionCookie(
          HttpServerResponse.jsonUnsafe(body, { headers: { "cache-control": "no-store" } }),
          opened
        )
      })
  })
}))

/** `GET /api/config`: what a client needs before it signs in. */
const configLayer = HttpApiBuilder.group(Api, "config", Effect.fn(function*(handlers) {
  const settings = (yield* BrowserAuth).settings
  return handlers.handle("config", () => Effect.succeed(publicConfigOf(settings)))
}))

/** What any client may know before signing in (`GET /api/config`, and the workbench's bootstrap element). */
export const publicConfigOf = (settings: AuthSettings): PublicConfig => ({
  authMode: settings.mode,
  loginUrl: settings.oidc === undefined ? null : "/auth/login",
  tokenLoginUrl: settings.tokenLogin ? "/auth/token-login" : null,
  logoutUrl: "/auth/logout",
  features: { oidc: settings.oidc !== undefined, tokenLogin: settings.tokenLogin, artifacts: true, sse: true },
  version: SERVICE_VERSION
})

const workspaceOf = (principal: OrgPrincipal) => ({
  org: { id: principal.orgId },
  principal: principal.browserSession === undefined
    ? { kind: "token" as const, id: principal.tokenId, accountId: null, email: null }
    : {
      kind: "browser_session" as const,
      id: principal.browserSession.sessionId,
      accountId: principal.browserSession.accountId,
      email: principal.browserSession.email
    },
  role: principal.browserSession?.role ?? null,
  scopes: principal.scopes,
  csrfToken: principal.browserSession?.csrfToken ?? null,
  features: {
    sessions: { supported: true },
    artifacts: { supported: true },
    members: { supported: principal.scopes.includes("admin") },
    workflows: { supported: true },
    byok: principal.scopes.includes("admin") ? { supported: true } : { supported: false, reason: "managing provider keys needs the admin role" },
    usage: { supported: true }
  }
})

/** `GET /api/workspace`: the caller as the server sees it. */
const workspaceLayer = HttpApiBuilder.group(Api, "workspace", (handlers) =>
  Effect.succeed(handlers.handle("workspace", () =>
    Effect.map(CurrentPrincipal, workspaceOf))))

export const layer = Layer.mergeAll(authLayer, configLayer, workspaceLayer)
