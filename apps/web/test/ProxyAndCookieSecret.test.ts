import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { Browser } from "./support/Browser.ts"
import { baseUrl, orgWithToken, request, serverLayer } from "./support/WebTestServer.ts"

const secretFile = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-cookie-secret-")), "cookie-secret")
Fs.writeFileSync(secretFile, "a-cookie-signing-secret-of-at-least-32-characters\n")

/** The test client reaches the server over loopback: here loopback is the trusted reverse proxy. */
const layer = serverLayer.pipe(
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_CLOUD_TRUSTED_PROXIES: "127.0.0.1, ::1",
    OPEN_COWORK_CLOUD_AUTH_FAILURES_PER_MIN: "3",
    OPEN_COWORK_CLOUD_COOKIE_SECRET_REF: `file:${secretFile}`
  }), { asPrimary: true })),
  Layer.provideMerge(TestDatabase.layer())
)

const bad = "occ_AAAAAAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

it.layer(layer)("behind a trusted proxy, with a cookie signing secret", (it) => {
  it.effect("authentication back-off keys on the client address from X-Forwarded-For, not the proxy's", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const from = (client: string) => ({ "x-forwarded-for": client })
      for (let i = 0; i < 3; i++) {
        assert.strictEqual((yield* request("GET", "/api/sessions", { token: bad, headers: from("203.0.113.7") })).status, 401)
      }
      const blocked = yield* request("GET", "/api/sessions", { token, headers: from("203.0.113.7") })
      assert.strictEqual(blocked.status, 429, "the failing client is blocked, even with a good token")
      assert.isAbove(Number(blocked.headers.get("retry-after")), 0)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token, headers: from("203.0.113.8") })).status, 200, "another client behind the same proxy is not")
      // A client cannot escape by forging the left of the header: the proxy appends the real address on the right.
      assert.strictEqual((yield* request("GET", "/api/sessions", { token, headers: from("198.51.100.1, 203.0.113.7") })).status, 429)
    }))

  it.effect("the session cookie is signed: a tampered or unsigned one is refused, the signed one works", () =>
    Effect.gen(function*() {
      const web = yield* baseUrl
      const owner = yield* orgWithToken(["admin", "operator", "web"])
      const browser = new Browser()
      const host = new URL(web).host
      const signedIn = yield* Effect.promise(() =>
        browser.request("POST", `${web}/auth/token-login`, { json: { token: owner.token }, headers: { origin: web } }))
      assert.strictEqual(signedIn.status, 200)
      const cookie = browser.cookie(host, "cowork_session")!.value
      const [value, signature, ...rest] = cookie.split(".")
      assert.strictEqual(rest.length, 0)
      assert.match(value!, /^[A-Za-z0-9_-]{43}$/)
      assert.match(signature!, /^[A-Za-z0-9_-]{43}$/)
      assert.strictEqual((yield* Effect.promise(() => browser.request("GET", `${web}/api/workspace`))).status, 200)

      const workspaceWith = (raw: string) =>
        Effect.promise(() => fetch(`${web}/api/workspace`, { headers: { cookie: `cowork_session=${raw}` } }).then((r) => r.status))
      assert.strictEqual(yield* workspaceWith(value!), 401, "the bare session id, unsigned")
      assert.strictEqual(yield* workspaceWith(`${value}.${"A".repeat(43)}`), 401, "a forged signature")
      const flipped = `${value!.slice(0, -1)}${value!.endsWith("A") ? "B" : "A"}.${signature}`
      assert.strictEqual(yield* workspaceWith(flipped), 401, "another id under this signature")
      assert.strictEqual(yield* workspaceWith(cookie), 200)
    }))
})
