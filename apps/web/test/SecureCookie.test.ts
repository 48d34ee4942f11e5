import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { Browser } from "./support/Browser.ts"
import { baseUrl, orgWithToken, serverLayer } from "./support/WebTestServer.ts"

/** Behind https (a TLS-terminating proxy in front of this test server), the session cookie is `__Host-` and Secure. */
const PUBLIC = "https://cowork.example.com"

const layer = serverLayer.pipe(
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_PUBLIC_URL: PUBLIC }), { asPrimary: true })),
  Layer.provideMerge(TestDatabase.layer())
)

it.layer(layer)("session cookie on an https public URL", (it) => {
  it.effect("is __Host-cowork_session: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain; only the public origin may mutate", () =>
    Effect.gen(function*() {
      const web = yield* baseUrl
      const owner = yield* orgWithToken(["admin", "operator", "web"])
      const browser = new Browser()
      const local = yield* Effect.promise(() =>
        browser.request("POST", `${web}/auth/token-login`, { json: { token: owner.token }, headers: { origin: web } }))
      assert.strictEqual(local.status, 403, "a loopback origin is another site once the public URL is https")

      const signedIn = yield* Effect.promise(() =>
        browser.request("POST", `${web}/auth/token-login`, { json: { token: owner.token }, headers: { origin: PUBLIC } }))
      assert.strictEqual(signedIn.status, 200, signedIn.text)
      const raw = browser.setCookies.find((cookie) => cookie.startsWith("__Host-cowork_session="))
      assert.isDefined(raw, browser.setCookies.join(" | "))
      for (const attribute of [/;\s*Secure/i, /;\s*HttpOnly/i, /;\s*SameSite=Lax/i, /;\s*Path=\//i]) assert.match(raw!, attribute)
      assert.notMatch(raw!, /Domain=/i)
      assert.isUndefined(browser.cookie(new URL(web).host, "cowork_session"), "no unprefixed cookie")

      const workspace = yield* Effect.promise(() => browser.request("GET", `${web}/api/workspace`))
      assert.strictEqual(workspace.status, 200)
      const csrf: string = workspace.json.csrfToken
      const fromPublic = yield* Effect.promise(() =>
        browser.request("POST", `${web}/api/sessions`, { json: {}, headers: { origin: PUBLIC, "x-csrf-token": csrf } }))
      assert.strictEqual(fromPublic.status, 201)
      const fromLoopback = yield* Effect.promise(() =>
        browser.request("POST", `${web}/api/sessions`, { json: {}, headers: { origin: web, "x-csrf-token": csrf } }))
      assert.strictEqual(fromLoopback.status, 403)
    }))
})
