import { Forbidden, type OrgPrincipal, scopesForRole, type TokenScope, Unauthorized } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Identity, type OpenedBrowserSession } from "@cowork/services"
import { Context, Effect, Layer, Redacted } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Crypto from "node:crypto"
import { type AuthSettings, authSettings, isLoopbackHttp } from "./AuthSettings.ts"

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"])

const CSRF_HEADER = "x-csrf-token"

const constantTimeEquals = (a: string, b: string): boolean => {
  const left = Crypto.createHash("sha256").update(a, "utf8").digest()
  const right = Crypto.createHash("sha256").update(b, "utf8").digest()
  return Crypto.timingSafeEqual(left, right) && a.length === b.length
}

/**
 * Browser sessions on the web role: the session cookie (HttpOnly, SameSite=Lax, `__Host-` + Secure unless the
 * public URL is plain-http loopback, carrying only a random id), authentication by cookie for tenant routes, CSRF
 * on every cookie mutation (Origin / `Sec-Fetch-Site` must be this site, and `X-CSRF-Token` the session's token),
 * and the rule that operator routes never accept a cookie.
 */
export class BrowserAuth extends Context.Service<BrowserAuth, {
  readonly settings: AuthSettings
  /**
   * The caller's principal from the session cookie, or `undefined` when the request carries none. 401 for a
   * refused cookie, 403 for an operator route, a scope the role lacks, or a mutation failing the CSRF checks.
   */
  readonly principalFromCookie: (
    accepted: ReadonlyArray<TokenScope>
  ) => Effect.Effect<OrgPrincipal | undefined, Unauthorized | Forbidden, HttpServerRequest.HttpServerRequest>
  /** Origin / `Sec-Fetch-Site` say the request comes from this site (a cross-site form or script fails). */
  readonly sameSite: (request: HttpServerRequest.HttpServerRequest) => boolean
  /** Same-site and the `X-CSRF-Token` header equals the session's token. */
  readonly csrfValid: (request: HttpServerRequest.HttpServerRequest, csrfToken: string) => boolean
  readonly sessionCookie: (request: HttpServerRequest.HttpServerRequest) => Redacted.Redacted<string> | undefined
  readonly setSessionCookie: (
    response: HttpServerResponse.HttpServerResponse,
    opened: OpenedBrowserSession
  ) => HttpServerResponse.HttpServerResponse
  readonly clearSessionCookie: (response: HttpServerResponse.HttpServerResponse) => HttpServerResponse.HttpServerResponse
  /** The short-lived cookie binding an OIDC login in flight to this browser (state / nonce / PKCE live server-side). */
  readonly loginCookieName: string
  readonly setLoginCookie: (response: HttpServerResponse.HttpServerResponse, loginId: Redacted.Redacted<string>, maxAgeMs: number) => HttpServerResponse.HttpServerResponse
  readonly clearLoginCookie: (response: HttpServerResponse.HttpServerResponse) => HttpServerResponse.HttpServerResponse
}>()("cowork/web/BrowserAuth") {}

const make = (settings: AuthSettings) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const metrics = yield* Metrics
    const publicOrigin = settings.publicUrl.origin
    const loopback = isLoopbackHttp(settings.publicUrl)
    const cookieOptions = { httpOnly: true, secure: settings.secureCookies, sameSite: "lax", path: "/" } as const
    const loginCookieName = settings.cookieName.startsWith("__Host-") ? "__Host-cowork_login" : "cowork_login"
    const secret = settings.cookieSecret === undefined ? undefined : Redacted.value(settings.cookieSecret)
    const signatureOf = (value: string) => Crypto.createHmac("sha256", secret!).update(value, "utf8").digest("base64url")
    /** The cookie as sent: `<value>.<signature>` with a cookie secret, else the value itself. */
    const signed = (value: string) => secret === undefined ? value : `${value}.${signatureOf(value)}`
    /** The value of a cookie whose signature checks out (constant time), else `undefined`. */
    const verified = (raw: string): string | undefined => {
      if (secret === undefined) return raw
      const dot = raw.lastIndexOf(".")
      if (dot <= 0) return undefined
      const value = raw.slice(0, dot)
      return constantTimeEquals(raw.slice(dot + 1), signatureOf(value)) ? value : undefined
    }

    const originAllowed = (origin: string, host: string | undefined): boolean => {
      if (origin === publicOrigin) return true
      if (!loopback) return false
      // On a laptop, http://localhost:8787 and http://127.0.0.1:8787 are the same site to the person using it, and
      // the port the server really listens on is the request's Host. Only loopback origins count, so a rebound DNS
      // name pointing at 127.0.0.1 is still another site.
      try {
        const url = new URL(origin)
        return isLoopbackHttp(url) && (url.port === settings.publicUrl.port || url.host === host)
      } catch {
        return false
      }
    }

    const sameSite = (request: HttpServerRequest.HttpServerRequest): boolean => {
      const origin = request.headers["origin"]
      if (origin !== undefined) return originAllowed(origin, request.headers["host"])
      const site = request.headers["sec-fetch-site"]
      // A browser sends Origin on every cross-site POST; without either header the caller is not a browser.
      return site === undefined || site === "same-origin"
    }

    const csrfValid = (request: HttpServerRequest.HttpServerRequest, csrfToken: string): boolean => {
      const presented = request.headers[CSRF_HEADER]
      return sameSite(request) && presented !== undefined && constantTimeEquals(presented, csrfToken)
    }

    /** The session cookie's value; a cookie with a wrong or missing signature reads as an unknown session. */
    const sessionCookie = (request: HttpServerRequest.HttpServerRequest) => {
      const raw = request.cookies[settings.cookieName]
      if (raw === undefined || raw === "") return undefined
      return Redacted.make(verified(raw) ?? "!")
    }

    const refuse = (reason: "operator_route" | "forbidden_scope" | "csrf_rejected", message: string) =>
      metrics.inc("open_cowork_cloud_browser_auth_refusals_total", { reason }).pipe(
        Effect.andThen(Effect.fail(new Forbidden({ message })))
      )

    const principalFromCookie = Effect.fn("BrowserAuth.principalFromCookie")(function*(accepted: ReadonlyArray<TokenScope>) {
      const request = yield* HttpServerRequest.HttpServerRequest
      const cookie = sessionCookie(request)
      if (cookie === undefined) return undefined
      const session = yield* identity.authenticateSession(cookie).pipe(
        Effect.catchTag("BrowserSessionRefused", (refused) =>
          metrics.inc("open_cowork_cloud_browser_auth_refusals_total", { reason: refused.reason }).pipe(
            Effect.andThen(Effect.fail(new Unauthorized({ message: "the browser session is missing, expired or revoked; sign in again" })))
          ))
      )
      if (accepted.includes("operator")) {
        return yield* refuse("operator_route", "operator routes need an operator token; a browser session is never accepted")
      }
      const scopes = scopesForRole(session.role)
      if (!accepted.some((scope) => scopes.includes(scope))) {
        return yield* refuse("forbidden_scope", "your role does not allow this route")
      }
      const csrfToken = Redacted.value(session.csrfToken)
      if (!SAFE_METHODS.has(request.method) && !csrfValid(request, csrfToken)) {
        return yield* refuse("csrf_rejected", "cross-site request refused: send X-CSRF-Token from the same origin")
      }
      return {
        kind: "org",
        orgId: session.orgId,
        tokenId: session.sessionId,
        scopes,
        browserSession: {
          sessionId: session.sessionId,
          accountId: session.accountId,
          email: session.email,
          role: session.role,
          csrfToken,
          sourceTokenId: session.sourceTokenId
        }
      } satisfies OrgPrincipal
    })

    return BrowserAuth.of({
      settings,
      principalFromCookie,
      sameSite,
      csrfValid,
      sessionCookie,
      setSessionCookie: (response, opened) =>
        HttpServerResponse.setCookieUnsafe(response, settings.cookieName, signed(Redacted.value(opened.cookie)), {
          ...cookieOptions,
          // The browser drops it when the session's absolute lifetime ends; the server enforces both lifetimes.
          expires: new Date(opened.session.absoluteExpiresAt)
        }),
      clearSessionCookie: (response) =>
        HttpServerResponse.setCookieUnsafe(response, settings.cookieName, "", { ...cookieOptions, maxAge: 0 }),
      loginCookieName,
      setLoginCookie: (response, loginId, maxAgeMs) =>
        HttpServerResponse.setCookieUnsafe(response, loginCookieName, Redacted.value(loginId), {
          ...cookieOptions,
          maxAge: `${Math.ceil(maxAgeMs / 1000)} seconds`
        }),
      clearLoginCookie: (response) =>
        HttpServerResponse.setCookieUnsafe(response, loginCookieName, "", { ...cookieOptions, maxAge: 0 })
    })
  })

/** From the OPEN_COWORK_CLOUD_* sign-in settings; needs `Identity` and `Metrics`. */
export const layer = Layer.effect(BrowserAuth, Effect.flatMap(authSettings, make))
