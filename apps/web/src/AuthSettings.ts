import type { MemberRole } from "@cowork/domain"
import { resolveSecretRefConfig } from "@cowork/services"
import { Config, ConfigProvider, Effect, Option, Redacted } from "effect"

/** How people sign in: through an OIDC identity provider, or (no issuer configured) the local owner-token login. */
type AuthMode = "oidc" | "local"

export interface OidcSettings {
  readonly issuer: URL
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  /** The org OIDC sign-ins join; unset: the first org (the embedded default's only one). */
  readonly orgId: string | undefined
  /** Verified emails in these domains become members on first sign-in (lower case, without `@`). */
  readonly allowedDomains: ReadonlyArray<string>
  readonly groupsClaim: string
  /** IdP group → org role; the strongest mapped role wins. */
  readonly roleMap: ReadonlyMap<string, MemberRole>
}

export interface AuthSettings {
  readonly mode: AuthMode
  readonly publicUrl: URL
  readonly oidc: OidcSettings | undefined
  /** `POST /auth/token-login` (the owner token exchanged for a browser session). */
  readonly tokenLogin: boolean
  readonly idleMs: number
  readonly absoluteMs: number
  readonly cookieName: string
  readonly secureCookies: boolean
  /**
   * `OPEN_COWORK_CLOUD_COOKIE_SECRET_REF`: the session cookie is signed with it (HMAC-SHA256) and a cookie whose
   * signature does not match is never looked up; rotating it ends every browser session. Unset: unsigned (the value
   * is still 256 random bits of which the database keeps only a hash).
   */
  readonly cookieSecret: Redacted.Redacted<string> | undefined
}

const configError = (message: string) => new Config.ConfigError(new ConfigProvider.SourceError({ message }))

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

export const isLoopbackHttp = (url: URL): boolean => url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)

/**
 * The session cookie is `__Host-cowork_session` (Secure, no Domain, Path=/) only when the public URL is https. On a
 * plain-http URL it is `cowork_session`: on loopback (the embedded default on a laptop) it is not Secure, since http
 * cannot carry a Secure cookie there; on any other http URL it stays Secure (a browser then sends it only over https,
 * so set the public URL to the https address people use) — HttpOnly and SameSite=Lax all the same.
 */
export const cookieNameFor = (publicUrl: URL) => publicUrl.protocol === "https:" ? "__Host-cowork_session" : "cowork_session"

const ROLE_RANK: Record<MemberRole, number> = { member: 0, admin: 1, owner: 2 }

export const strongestRole = (roles: ReadonlyArray<MemberRole>): MemberRole | undefined =>
  roles.reduce<MemberRole | undefined>((best, role) => best === undefined || ROLE_RANK[role] > ROLE_RANK[best] ? role : best, undefined)

const parseRoleMap = (raw: string): Map<string, MemberRole> => {
  const map = new Map<string, MemberRole>()
  for (const entry of raw.split(",").map((part) => part.trim()).filter((part) => part !== "")) {
    const separator = entry.lastIndexOf("=")
    const role = entry.slice(separator + 1).trim()
    if (separator > 0 && (role === "owner" || role === "admin" || role === "member")) map.set(entry.slice(0, separator).trim(), role)
  }
  return map
}

const list = (raw: string) => raw.split(",").map((part) => part.trim().toLowerCase().replace(/^@/, "")).filter((part) => part !== "")

/** Reads the OPEN_COWORK_CLOUD_* sign-in settings. */
export const authSettings: Effect.Effect<AuthSettings, Config.ConfigError> = Effect.gen(function*() {
  const port = yield* Config.Int("OPEN_COWORK_CLOUD_PORT").pipe(Config.withDefault(8787))
  const publicUrlRaw = yield* Config.String("OPEN_COWORK_CLOUD_PUBLIC_URL").pipe(Config.withDefault(`http://127.0.0.1:${port}`))
  const publicUrl = yield* Effect.try({
    try: () => new URL(publicUrlRaw),
    catch: () => configError("OPEN_COWORK_CLOUD_PUBLIC_URL must be an absolute URL")
  })
  const issuer = yield* Config.option(Config.String("OPEN_COWORK_CLOUD_OIDC_ISSUER"))
  let oidc: OidcSettings | undefined
  if (Option.isSome(issuer)) {
    const clientId = yield* Config.String("OPEN_COWORK_CLOUD_OIDC_CLIENT_ID")
    const secretRef = yield* Config.option(Config.String("OPEN_COWORK_CLOUD_OIDC_CLIENT_SECRET_REF"))
    const clientSecret = Option.isSome(secretRef) ? yield* resolveSecretRefConfig(secretRef.value, "OPEN_COWORK_CLOUD_OIDC_CLIENT_SECRET_REF") : undefined
    const issuerUrl = yield* Effect.try({
      try: () => new URL(issuer.value),
      catch: () => configError("OPEN_COWORK_CLOUD_OIDC_ISSUER must be an absolute URL")
    })
    oidc = {
      issuer: issuerUrl,
      clientId,
      clientSecret,
      orgId: Option.getOrUndefined(yield* Config.option(Config.String("OPEN_COWORK_CLOUD_OIDC_ORG_ID"))),
      allowedDomains: list(yield* Config.String("OPEN_COWORK_CLOUD_OIDC_ALLOWED_DOMAINS").pipe(Config.withDefault(""))),
      groupsClaim: yield* Config.String("OPEN_COWORK_CLOUD_OIDC_GROUPS_CLAIM").pipe(Config.withDefault("groups")),
      roleMap: parseRoleMap(yield* Config.String("OPEN_COWORK_CLOUD_OIDC_ROLE_MAP").pipe(Config.withDefault("")))
    }
  }
  const cookieSecretRef = yield* Config.option(Config.String("OPEN_COWORK_CLOUD_COOKIE_SECRET_REF"))
  const cookieSecret = Option.isSome(cookieSecretRef) ? yield* resolveSecretRefConfig(cookieSecretRef.value, "OPEN_COWORK_CLOUD_COOKIE_SECRET_REF") : undefined
  if (cookieSecret !== undefined && Redacted.value(cookieSecret).length < 32) {
    return yield* Effect.fail(configError("the secret named by OPEN_COWORK_CLOUD_COOKIE_SECRET_REF must be at least 32 characters"))
  }
  const tokenLogin = yield* Config.Boolean("OPEN_COWORK_CLOUD_TOKEN_LOGIN").pipe(Config.withDefault(oidc === undefined))
  return {
    mode: oidc === undefined ? "local" : "oidc",
    publicUrl,
    oidc,
    tokenLogin,
    idleMs: yield* Config.Int("OPEN_COWORK_CLOUD_SESSION_IDLE_MS").pipe(Config.withDefault(2 * 3_600_000)),
    absoluteMs: yield* Config.Int("OPEN_COWORK_CLOUD_SESSION_ABSOLUTE_MS").pipe(Config.withDefault(12 * 3_600_000)),
    cookieName: cookieNameFor(publicUrl),
    secureCookies: !isLoopbackHttp(publicUrl),
    cookieSecret
  } satisfies AuthSettings
})
