import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Jose from "jose"
import Provider from "oidc-provider"

/**
 * A real OpenID Provider (`oidc-provider`) on loopback, with its development login and consent forms. The signing
 * key is ours (made with `jose`), so a test can also mint ID tokens the provider never issued: `tamper` rewrites
 * the `id_token` of the next token responses (forged signature, expired, wrong audience, wrong nonce).
 */
export interface TestIdp {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  /** The provider's own signing key (a token signed with it verifies). */
  readonly signingKey: CryptoKey
  readonly kid: string
  readonly people: Map<string, { email: string; emailVerified: boolean; name: string; groups: ReadonlyArray<string> }>
  tamper: ((idToken: string) => Promise<string>) | undefined
  readonly close: () => Promise<void>
}

export const startTestIdp = async (options: { readonly redirectUri: string }): Promise<TestIdp> => {
  let handler: Http.RequestListener = (_req, res) => {
    res.statusCode = 503
    res.end()
  }
  const server = Http.createServer((req, res) => handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const { privateKey } = await Jose.generateKeyPair("RS256", { extractable: true })
  const kid = "cowork-test-idp"
  const jwk = { ...(await Jose.exportJWK(privateKey)), kid, alg: "RS256", use: "sig" }
  const people: TestIdp["people"] = new Map()
  const clientId = "cowork-cloud"
  const clientSecret = "test-client-secret-0123456789abcdef"

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [options.redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic"
    }],
    jwks: { keys: [jwk as never] },
    cookies: { keys: ["test-idp-cookie-key-0123456789"] },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "groups"] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3_600, IdToken: 600, Interaction: 600, Session: 3_600 },
    findAccount: (_ctx, sub) => {
      const person = people.get(sub)
      if (person === undefined) return undefined
      return {
        accountId: sub,
        claims: () => ({ sub, email: person.email, email_verified: person.emailVerified, name: person.name, groups: [...person.groups] })
      }
    }
  })
  const idp: TestIdp = {
    issuer,
    clientId,
    clientSecret,
    signingKey: privateKey,
    kid,
    people,
    tamper: undefined,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
  provider.use(async (ctx, next) => {
    await next()
    if (ctx.path === "/token" && idp.tamper !== undefined && ctx.body !== undefined && typeof ctx.body === "object") {
      const body = ctx.body as { id_token?: string }
      if (body.id_token !== undefined) ctx.body = { ...body, id_token: await idp.tamper(body.id_token) }
    }
  })
  handler = provider.callback()
  return idp
}
