import { Context, Data, Effect, Redacted } from "effect"
import * as OpenId from "openid-client"
import type { OidcSettings } from "./AuthSettings.ts"

/** The identity provider could not be reached (discovery, JWKS or token endpoint): 503, try again. */
export class OidcUnavailable extends Data.TaggedError("OidcUnavailable")<{ readonly cause: unknown }> {}

/** The IdP's answer failed validation (code, state, nonce, ID token signature / issuer / audience / expiry). */
export class OidcRefused extends Data.TaggedError("OidcRefused")<{ readonly reason: string }> {}

export interface OidcIdentity {
  readonly issuer: string
  readonly subject: string
  readonly email: string | null
  readonly emailVerified: boolean
  readonly name: string | null
  readonly groups: ReadonlyArray<string>
}

/** Authorization code + PKCE against the configured issuer, validated by `openid-client` (ID tokens with `jose`). */
export class OidcClient extends Context.Service<OidcClient, {
  readonly authorizationUrl: (input: {
    readonly redirectUri: string
    readonly state: string
    readonly nonce: string
    readonly codeVerifier: string
  }) => Effect.Effect<URL, OidcUnavailable>
  readonly exchange: (input: {
    readonly callbackUrl: URL
    readonly state: string
    readonly nonce: string
    readonly codeVerifier: string
  }) => Effect.Effect<OidcIdentity, OidcUnavailable | OidcRefused>
}>()("cowork/web/OidcClient") {}

const REQUEST_TIMEOUT_SECONDS = 10

/** A network failure or timeout talking to the IdP, as opposed to an answer that failed validation. */
const isUnreachable = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false
  if (error.name === "AbortError" || error.name === "TimeoutError") return true
  if (error instanceof TypeError && /fetch failed/i.test(error.message)) return true
  const cause = (error as { cause?: unknown }).cause
  return cause !== undefined && cause !== error && isUnreachable(cause)
}

export const make = (settings: OidcSettings): OidcClient["Service"] => {
  // Discovery happens on first use and is kept; a failed discovery is retried by the next sign-in (an IdP outage at
  // start does not need a restart once it is over).
  let configuration: Promise<OpenId.Configuration> | undefined
  const discover = Effect.tryPromise({
    try: () => {
      configuration ??= OpenId.discovery(
        settings.issuer,
        settings.clientId,
        undefined,
        settings.clientSecret === undefined ? OpenId.None() : OpenId.ClientSecretBasic(Redacted.value(settings.clientSecret)),
        {
          timeout: REQUEST_TIMEOUT_SECONDS,
          execute: [
            // The ID token's signature is checked against the IdP's JWKS (jose) even though it came over the token
            // endpoint's TLS: a token that did not come from the IdP's key is refused, whatever the transport.
            OpenId.enableNonRepudiationChecks,
            // A plain-http issuer is only accepted on loopback (tests, a local IdP).
            ...(settings.issuer.protocol === "http:" && isLoopback(settings.issuer) ? [OpenId.allowInsecureRequests] : [])
          ]
        }
      ).catch((error: unknown) => {
        configuration = undefined
        throw error
      })
      return configuration
    },
    catch: (cause) => new OidcUnavailable({ cause })
  })

  return OidcClient.of({
    authorizationUrl: (input) =>
      Effect.gen(function*() {
        const config = yield* discover
        const codeChallenge = yield* Effect.promise(() => OpenId.calculatePKCECodeChallenge(input.codeVerifier))
        return OpenId.buildAuthorizationUrl(config, {
          redirect_uri: input.redirectUri,
          scope: "openid email profile",
          response_type: "code",
          code_challenge: codeChallenge,
          code_challenge_method: "S256",
          state: input.state,
          nonce: input.nonce
        })
      }),
    exchange: (input) =>
      Effect.gen(function*() {
        const config = yield* discover
        const tokens = yield* Effect.tryPromise({
          try: () =>
            OpenId.authorizationCodeGrant(config, input.callbackUrl, {
              pkceCodeVerifier: input.codeVerifier,
              expectedState: input.state,
              expectedNonce: input.nonce,
              idTokenExpected: true
            }),
          catch: (cause) =>
            isUnreachable(cause)
              ? new OidcUnavailable({ cause })
              : new OidcRefused({ reason: cause instanceof Error ? `${cause.name}: ${cause.message}` : "refused" })
        })
        const claims = tokens.claims()
        if (claims === undefined) return yield* new OidcRefused({ reason: "no ID token" })
        const groups = claims[settings.groupsClaim]
        return {
          issuer: claims.iss,
          subject: claims.sub,
          email: typeof claims.email === "string" ? claims.email.toLowerCase() : null,
          emailVerified: claims.email_verified === true,
          name: typeof claims.name === "string" ? claims.name : null,
          groups: Array.isArray(groups) ? groups.filter((group): group is string => typeof group === "string") : []
        } satisfies OidcIdentity
      })
  })
}

const isLoopback = (url: URL) => url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]"
