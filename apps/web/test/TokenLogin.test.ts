import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { Browser } from "./support/Browser.ts"
import { baseUrl, layer, orgWithToken } from "./support/WebTestServer.ts"

/** The local mode (no IdP): `cowork up`'s owner token, exchanged once for a browser session the workbench uses. */
it.layer(layer)("local sign-in with the owner token", (it) => {
  it.effect("the owner token opens an owner's browser session; operator routes still refuse the cookie; logout ends it", () =>
    Effect.gen(function*() {
      const web = yield* baseUrl
      const host = new URL(web).host
      const owner = yield* orgWithToken(["admin", "operator", "web"])
      const browser = new Browser()

      const config = yield* Effect.promise(() => browser.request("GET", `${web}/api/config`))
      assert.deepInclude(config.json, { authMode: "local", loginUrl: null, tokenLoginUrl: "/auth/token-login" })

      const crossSite = yield* Effect.promise(() =>
        browser.request("POST", `${web}/auth/token-login`, { json: { token: owner.token }, headers: { origin: "https://evil.example" } }))
      assert.strictEqual(crossSite.status, 403, "a cross-site page cannot sign the browser in")
      const wrong = yield* Effect.promise(() => browser.request("POST", `${web}/auth/token-login`, { json: { token: "occ_nope" }, headers: { origin: web } }))
      assert.strictEqual(wrong.status, 401)
      const webOnly = yield* orgWithToken(["web"])
      const notAdmin = yield* Effect.promise(() => browser.request("POST", `${web}/auth/token-login`, { json: { token: webOnly.token }, headers: { origin: web } }))
      assert.strictEqual(notAdmin.status, 403, "only an admin token signs a browser in")
      assert.isUndefined(browser.cookie(host, "cowork_session"))

      const signedIn = yield* Effect.promise(() => browser.request("POST", `${web}/auth/token-login`, { json: { token: owner.token }, headers: { origin: web } }))
      assert.strictEqual(signedIn.status, 200, signedIn.text)
      assert.deepInclude(signedIn.json, { orgId: owner.orgId, role: "owner" })
      assert.notInclude(signedIn.text, owner.token, "the token is not echoed")
      const cookie = browser.cookie(host, "cowork_session")
      assert.isDefined(cookie)
      assert.notInclude(cookie!.value, owner.token.slice(4, 24), "the cookie is a fresh random id, not the token")

      const workspace = yield* Effect.promise(() => browser.request("GET", `${web}/api/workspace`))
      assert.strictEqual(workspace.status, 200)
      assert.deepInclude(workspace.json, { role: "owner", scopes: ["web", "admin"], csrfToken: signedIn.json.csrfToken })
      const operator = yield* Effect.promise(() => browser.request("GET", `${web}/api/diagnostics`))
      assert.strictEqual(operator.status, 403, "the owner token could, its browser session cannot")
      const created = yield* Effect.promise(() =>
        browser.request("POST", `${web}/api/sessions`, { json: {}, headers: { origin: web, "x-csrf-token": signedIn.json.csrfToken } }))
      assert.strictEqual(created.status, 201)
      const prompted = yield* Effect.promise(() =>
        browser.request("POST", `${web}/api/sessions/${created.json.session.id}/prompt`, {
          json: { text: "hello" },
          headers: { origin: web, "x-csrf-token": signedIn.json.csrfToken }
        }))
      assert.strictEqual(prompted.status, 202, prompted.text)
      // An explicit window: the server's Effect clock is the test clock here.
      const usage = yield* Effect.promise(() => browser.request("GET", `${web}/api/usage/summary?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z`))
      assert.strictEqual(usage.status, 200, usage.text)
      assert.deepInclude(usage.json, { orgId: owner.orgId, prompts: 1, sessionsCreated: 1, artifactUploads: 0 })
      assert.deepInclude(usage.json.quotas, { prompts_per_hour: 600, queued_commands: 1000 })
      const usageEvents = yield* Effect.promise(() => browser.request("GET", `${web}/api/usage/events`))
      assert.deepStrictEqual(usageEvents.json.events.map((e: { kind: string; id: string }) => [e.kind, e.id]), [["prompt", prompted.json.commandId]])
      assert.strictEqual((yield* Effect.promise(() => browser.request("GET", `${web}/api/usage/summary?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z`))).status, 400)

      const out = yield* Effect.promise(() => browser.request("POST", `${web}/auth/logout`, { headers: { origin: web, "x-csrf-token": signedIn.json.csrfToken } }))
      assert.strictEqual(out.status, 204)
      const stale = new Browser()
      stale.setCookie(host, "cowork_session", cookie!.value)
      assert.strictEqual((yield* Effect.promise(() => stale.request("GET", `${web}/api/workspace`))).status, 401)
    }))
})
