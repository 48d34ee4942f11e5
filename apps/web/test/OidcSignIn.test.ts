import { Metrics } from "@cowork/observability"
import { Identity, Tokens } from "@cowork/services"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { afterAll, assert, it } from "@effect/vitest"
import * as Jose from "jose"
import { ConfigProvider, Effect, Layer, References } from "effect"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import * as WebRole from "../src/WebRole.ts"
import { Browser } from "./support/Browser.ts"
import { startTestIdp } from "./support/TestIdp.ts"

// The relying party's public URL must be known before the IdP registers its redirect URI: reserve a loopback port.
const webPort = await new Promise<number>((resolve) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const port = (probe.address() as Net.AddressInfo).port
    probe.close(() => resolve(port))
  })
})
const web = `http://127.0.0.1:${webPort}`
const callback = `${web}/auth/callback`
const idp = await startTestIdp({ redirectUri: callback })
afterAll(() => idp.close())

const person = (sub: string, email: string, groups: ReadonlyArray<string> = [], emailVerified = true) =>
  idp.people.set(sub, { email, emailVerified, name: sub, groups })
person("alice", "alice@example.com")
person("bob", "bob@example.com")
person("carol", "carol@elsewhere.org")
person("dave", "dave@example.com", ["cowork-admins"])
person("mallory", "mallory@example.com", [], false)

const layer = WebRole.layerServe.pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: webPort, host: "127.0.0.1" })),
  Layer.provideMerge(WebRole.layerPgServices),
  Layer.provideMerge(Metrics.layerTest("web")),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error")),
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-oidc-test-")),
    OPEN_COWORK_CLOUD_PUBLIC_URL: web,
    OPEN_COWORK_CLOUD_OIDC_ISSUER: idp.issuer,
    OPEN_COWORK_CLOUD_OIDC_CLIENT_ID: idp.clientId,
    OPEN_COWORK_CLOUD_OIDC_CLIENT_SECRET_REF: "env:TEST_IDP_CLIENT_SECRET",
    TEST_IDP_CLIENT_SECRET: idp.clientSecret,
    OPEN_COWORK_CLOUD_OIDC_ALLOWED_DOMAINS: "example.com",
    OPEN_COWORK_CLOUD_OIDC_ROLE_MAP: "cowork-admins=admin"
  }))),
  Layer.provideMerge(TestDatabase.layer())
)

/** The org OIDC sign-ins join (the oldest one), created on first use. */
const acme = Effect.gen(function*() {
  const identity = yield* Identity
  const existing = yield* identity.defaultOrgId
  if (existing !== undefined) return existing
  return (yield* (yield* Tokens).createOrg("acme")).orgId
})

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** Signs `login` in through the real IdP; returns the browser and the callback's response. */
const signIn = (login: string, options: { readonly returnTo?: string; readonly browser?: Browser } = {}) =>
  promise(async () => {
    const browser = options.browser ?? new Browser()
    const start = await browser.request("GET", `${web}/auth/login${options.returnTo === undefined ? "" : `?returnTo=${encodeURIComponent(options.returnTo)}`}`)
    if (start.status !== 302) throw new Error(`login answered ${start.status}: ${start.text}`)
    const back = await browser.walkToCallback(start.headers.get("location")!, login, callback)
    const landed = await browser.request("GET", back)
    return { browser, landed, callbackUrl: back }
  })

const sessionCookie = (browser: Browser) => browser.cookie(`127.0.0.1:${webPort}`, "cowork_session")

const mutate = (browser: Browser, method: string, path: string, options: { csrf?: string; origin?: string | null; site?: string; json?: unknown } = {}) =>
  promise(() =>
    browser.request(method, `${web}${path}`, {
      headers: {
        ...(options.origin === null ? {} : { origin: options.origin ?? web }),
        ...(options.csrf === undefined ? {} : { "x-csrf-token": options.csrf }),
        ...(options.site === undefined ? {} : { "sec-fetch-site": options.site })
      },
      ...(options.json === undefined ? {} : { json: options.json })
    }))

const get = (browser: Browser, path: string, headers: Record<string, string> = {}) =>
  promise(() => browser.request("GET", `${web}${path}`, { headers }))

const reasons = ["ok", "refused", "not_a_member", "idp_unavailable"] as const
const signInCounts = Effect.gen(function*() {
  const metrics = yield* Metrics
  const counts: Record<string, number> = {}
  for (const outcome of reasons) counts[outcome] = yield* metrics.read("open_cowork_cloud_sign_ins_total", { method: "oidc", outcome })
  return counts
})

it.layer(layer, { timeout: 120_000 })("OIDC sign-in through a real identity provider", (it) => {
  it.effect("code flow with PKCE: a session cookie, /api/workspace shows the member, CSRF guards every mutation, operator routes refuse it", () =>
    Effect.gen(function*() {
      const orgId = yield* acme
      const { browser, landed } = yield* signIn("alice", { returnTo: "/sessions?tab=mine" })
      assert.strictEqual(landed.status, 302, landed.text)
      assert.strictEqual(landed.headers.get("location"), "/sessions?tab=mine")

      const cookie = sessionCookie(browser)
      assert.isDefined(cookie, "the callback set the session cookie")
      assert.match(cookie!.value, /^[A-Za-z0-9_-]{43}$/, "the cookie carries a random id only")
      assert.match(cookie!.attributes, /HttpOnly/i)
      assert.match(cookie!.attributes, /SameSite=Lax/i)
      assert.match(cookie!.attributes, /Path=\//i)
      assert.notMatch(cookie!.attributes, /Secure/i, "plain-http loopback: not Secure")
      assert.notMatch(cookie!.attributes, /Domain=/i)
      assert.isUndefined(browser.cookie(`127.0.0.1:${webPort}`, "cowork_login"), "the login cookie is cleared")

      const workspace = yield* get(browser, "/api/workspace")
      assert.strictEqual(workspace.status, 200, workspace.text)
      assert.deepInclude(workspace.json, { org: { id: orgId }, role: "member", scopes: ["web"] })
      assert.deepInclude(workspace.json.principal, { kind: "browser_session", email: "alice@example.com" })
      const csrf: string = workspace.json.csrfToken
      assert.isString(csrf)

      const created = yield* mutate(browser, "POST", "/api/sessions", { csrf, json: { title: "from the browser" } })
      assert.strictEqual(created.status, 201, created.text)
      const crossSite = yield* mutate(browser, "POST", "/api/sessions", { csrf, origin: "https://evil.example", json: {} })
      assert.strictEqual(crossSite.status, 403)
      assert.match(crossSite.json.error.message, /cross-site/)
      const noToken = yield* mutate(browser, "POST", "/api/sessions", { json: {} })
      assert.strictEqual(noToken.status, 403)
      const wrongToken = yield* mutate(browser, "POST", "/api/sessions", { csrf: csrf.replace(/^./, (c) => c === "A" ? "B" : "A"), json: {} })
      assert.strictEqual(wrongToken.status, 403)
      const fetchCrossSite = yield* mutate(browser, "POST", "/api/sessions", { csrf, origin: null, site: "cross-site", json: {} })
      assert.strictEqual(fetchCrossSite.status, 403)
      const list = yield* get(browser, "/api/sessions")
      assert.deepStrictEqual(list.json.sessions.map((s: { title: string }) => s.title), ["from the browser"], "only the guarded POST went through")

      assert.strictEqual((yield* get(browser, "/api/runtime/status")).status, 403, "operator routes never accept a cookie")
      assert.strictEqual((yield* get(browser, "/api/admin/workers")).status, 403)
      assert.strictEqual((yield* get(browser, "/api/members")).status, 403, "a member is not an admin")
      const withBearer = yield* get(browser, "/api/workspace", { authorization: "Bearer not-a-token" })
      assert.strictEqual(withBearer.status, 401, "a bearer request is never cookie-authenticated")
    }))

  it.effect("logout ends the session at once (CSRF-guarded); an admin's revocation ends a member's sessions at once", () =>
    Effect.gen(function*() {
      yield* acme
      const { browser } = yield* signIn("bob")
      const csrf: string = (yield* get(browser, "/api/workspace")).json.csrfToken
      const stolenCookie = sessionCookie(browser)!.value

      const forged = yield* mutate(browser, "POST", "/auth/logout", { origin: "https://evil.example", csrf })
      assert.strictEqual(forged.status, 403)
      assert.strictEqual((yield* get(browser, "/api/workspace")).status, 200, "a cross-site logout did nothing")
      const out = yield* mutate(browser, "POST", "/auth/logout", { csrf })
      assert.strictEqual(out.status, 204)
      assert.isUndefined(sessionCookie(browser), "the cookie is cleared")
      const replay = new Browser()
      replay.setCookie(`127.0.0.1:${webPort}`, "cowork_session", stolenCookie)
      assert.strictEqual((yield* get(replay, "/api/workspace")).status, 401, "the old cookie is dead server-side")

      // dave's IdP group maps to admin; bob signs in on two browsers; dave ends both sessions.
      const laptop = (yield* signIn("bob")).browser
      const phone = (yield* signIn("bob")).browser
      const admin = (yield* signIn("dave")).browser
      const adminWorkspace = yield* get(admin, "/api/workspace")
      assert.strictEqual(adminWorkspace.json.role, "admin")
      const members = yield* get(admin, "/api/members")
      assert.strictEqual(members.status, 200, members.text)
      const bob = members.json.members.find((m: { email: string }) => m.email === "bob@example.com")
      const noCsrf = yield* mutate(admin, "DELETE", `/api/members/${bob.accountId}/sessions`)
      assert.strictEqual(noCsrf.status, 403)
      assert.strictEqual((yield* get(laptop, "/api/workspace")).status, 200)
      const revoked = yield* mutate(admin, "DELETE", `/api/members/${bob.accountId}/sessions`, { csrf: adminWorkspace.json.csrfToken })
      assert.strictEqual(revoked.status, 200, revoked.text)
      assert.strictEqual(revoked.json.revoked, 2)
      assert.strictEqual((yield* get(laptop, "/api/workspace")).status, 401)
      assert.strictEqual((yield* get(phone, "/api/workspace")).status, 401)
      assert.strictEqual((yield* get(admin, "/api/workspace")).status, 200, "the admin's own session lives on")

      // Removing a member ends the sessions they have (the allowed domain lets them sign in afresh, as a member).
      const again = (yield* signIn("bob")).browser
      const removed = yield* mutate(admin, "DELETE", `/api/members/${bob.accountId}`, { csrf: adminWorkspace.json.csrfToken })
      assert.strictEqual(removed.status, 204, removed.text)
      assert.strictEqual((yield* get(again, "/api/workspace")).status, 401)

      // The audit log tells who did it, with the request id, and carries no cookie or CSRF token.
      const daveId: string = adminWorkspace.json.principal.accountId
      const revocations = yield* get(admin, "/api/admin/audit?action=member.sessions_revoked")
      assert.strictEqual(revocations.status, 200, revocations.text)
      assert.lengthOf(revocations.json.events, 1)
      assert.deepInclude(revocations.json.events[0], { actor: `account:${daveId}`, target: `account:${bob.accountId}` })
      assert.deepStrictEqual(revocations.json.events[0].details, { revoked: 2 })
      assert.isString(revocations.json.events[0].requestId)
      const everything = yield* get(admin, "/api/admin/audit?limit=200")
      const actions = everything.json.events.map((event: { action: string }) => event.action)
      for (const action of ["auth.sign_in", "auth.sign_out", "member.sessions_revoked", "member.removed"]) assert.include(actions, action)
      const byBob = yield* get(admin, `/api/admin/audit?actor=${encodeURIComponent(`account:${bob.accountId}`)}`)
      assert.isTrue(byBob.json.events.length > 0 && byBob.json.events.every((event: { actor: string }) => event.actor === `account:${bob.accountId}`))
      for (const secret of [stolenCookie, csrf, adminWorkspace.json.csrfToken, sessionCookie(admin)!.value]) {
        assert.notInclude(everything.text, secret)
      }
      assert.strictEqual((yield* get(admin, "/api/admin/audit?since=yesterday")).status, 400)
      assert.strictEqual((yield* get(laptop, "/api/admin/audit")).status, 401)
    }))

  it.effect("forged, expired and wrong-audience ID tokens, a nonce or state mismatch, a replayed callback are refused", () =>
    Effect.gen(function*() {
      yield* acme
      const before = yield* signInCounts
      const otherKey = (yield* promise(() => Jose.generateKeyPair("RS256"))).privateKey
      const resign = (mutateClaims: (claims: Jose.JWTPayload) => Jose.JWTPayload, key: CryptoKey = idp.signingKey) =>
        async (idToken: string) =>
          new Jose.SignJWT(mutateClaims({ ...Jose.decodeJwt(idToken) }))
            .setProtectedHeader({ alg: "RS256", kid: idp.kid })
            .sign(key)
      const now = Math.floor(Date.now() / 1000)
      const cases: ReadonlyArray<[string, (idToken: string) => Promise<string>]> = [
        ["forged signature", resign((claims) => claims, otherKey)],
        ["expired", resign((claims) => ({ ...claims, iat: now - 7_200, exp: now - 3_600 }))],
        ["wrong audience", resign((claims) => ({ ...claims, aud: "someone-else" }))],
        ["nonce mismatch", resign((claims) => ({ ...claims, nonce: "not-the-nonce-we-sent" }))],
        ["wrong issuer", resign((claims) => ({ ...claims, iss: "https://idp.evil.example" }))]
      ]
      for (const [label, tamper] of cases) {
        idp.tamper = tamper
        const { browser, landed } = yield* signIn("alice").pipe(Effect.ensuring(Effect.sync(() => { idp.tamper = undefined })))
        assert.strictEqual(landed.status, 401, `${label}: ${landed.text}`)
        assert.isUndefined(sessionCookie(browser), `${label}: no session cookie`)
      }
      // The untampered control: the same person signs in fine.
      assert.strictEqual((yield* signIn("alice")).landed.status, 302)

      // State mismatch: the callback's state is not the one this browser's login carries.
      const browser = new Browser()
      const start = yield* promise(() => browser.request("GET", `${web}/auth/login`))
      const back = yield* promise(() => browser.walkToCallback(start.headers.get("location")!, "alice", callback))
      const tampered = new URL(back)
      tampered.searchParams.set("state", "attacker-state")
      const mismatch = yield* promise(() => browser.request("GET", tampered))
      assert.strictEqual(mismatch.status, 401, mismatch.text)
      const replay = yield* promise(() => browser.request("GET", back))
      assert.strictEqual(replay.status, 400, "the login was taken once: the genuine callback cannot be replayed after it")
      assert.isUndefined(sessionCookie(browser))

      // Login CSRF: a callback in a browser that never started the login (no login cookie) is refused.
      const victim = new Browser()
      const attackerBrowser = new Browser()
      const attackerStart = yield* promise(() => attackerBrowser.request("GET", `${web}/auth/login`))
      const attackerBack = yield* promise(() => attackerBrowser.walkToCallback(attackerStart.headers.get("location")!, "alice", callback))
      assert.strictEqual((yield* promise(() => victim.request("GET", attackerBack))).status, 400)
      assert.isUndefined(sessionCookie(victim))

      const after = yield* signInCounts
      assert.strictEqual(after.refused! - before.refused!, cases.length + 3)
      assert.strictEqual(after.ok! - before.ok!, 1)
    }))

  it.effect("who may join: an allowed, verified email domain or a mapped group; anyone else is refused", () =>
    Effect.gen(function*() {
      yield* acme
      const before = yield* signInCounts
      const carol = yield* signIn("carol")
      assert.strictEqual(carol.landed.status, 403, carol.landed.text)
      assert.isUndefined(sessionCookie(carol.browser))
      const mallory = yield* signIn("mallory")
      assert.strictEqual(mallory.landed.status, 403, "an unverified email does not count for the domain rule")
      const after = yield* signInCounts
      assert.strictEqual(after.not_a_member! - before.not_a_member!, 2)

      // An admin invites carol by email: her next sign-in (verified email) makes her a member, once.
      const admin = (yield* signIn("dave")).browser
      const adminCsrf: string = (yield* get(admin, "/api/workspace")).json.csrfToken
      const invited = yield* mutate(admin, "POST", "/api/members", { csrf: adminCsrf, json: { email: "Carol@Elsewhere.org", role: "member" } })
      assert.strictEqual(invited.status, 201, invited.text)
      assert.deepStrictEqual(invited.json.invitation, { email: "carol@elsewhere.org", role: "member" })
      const asOwner = yield* mutate(admin, "POST", "/api/members", { csrf: adminCsrf, json: { email: "x@elsewhere.org", role: "owner" } })
      assert.strictEqual(asOwner.status, 403, "an admin cannot invite an owner")
      const carolAgain = yield* signIn("carol")
      assert.strictEqual(carolAgain.landed.status, 302, carolAgain.landed.text)
      assert.deepInclude((yield* get(carolAgain.browser, "/api/workspace")).json, { role: "member" })

      const config = yield* get(new Browser(), "/api/config")
      assert.deepInclude(config.json, { authMode: "oidc", loginUrl: "/auth/login", tokenLoginUrl: null })
      const tokenLogin = yield* mutate(new Browser(), "POST", "/auth/token-login", { json: { token: "occ_x" } })
      assert.strictEqual(tokenLogin.status, 404, "token login is off when OIDC is configured")
    }))

  it.effect("the IdP's own error (the person cancelled) is refused without a session", () =>
    Effect.gen(function*() {
      const browser = new Browser()
      yield* promise(() => browser.request("GET", `${web}/auth/login`))
      const denied = yield* promise(() => browser.request("GET", `${callback}?error=access_denied&state=x`))
      assert.strictEqual(denied.status, 401)
      assert.isUndefined(sessionCookie(browser))
    }))
})
