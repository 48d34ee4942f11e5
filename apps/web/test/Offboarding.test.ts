import { PgOffboarding } from "@cowork/postgres"
import { Offboarding } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Browser } from "./support/Browser.ts"
import { baseUrl, layer, orgWithToken, request } from "./support/WebTestServer.ts"

/** After offboarding, every way into the org is refused at the HTTP level; another org carries on. */
it.layer(PgOffboarding.layer.pipe(Layer.provideMerge(layer)))("tenant offboarding over HTTP", (it) => {
  it.effect("the org's tokens and browser sessions are refused at once, its sessions take no prompt; another org is untouched", () =>
    TestClock.withLive(Effect.gen(function*() {
      const web = yield* baseUrl
      const leaving = yield* orgWithToken(["admin", "operator", "web"])
      const staying = yield* orgWithToken(["web"])
      const browser = new Browser()
      const signedIn = yield* Effect.promise(() =>
        browser.request("POST", `${web}/auth/token-login`, { json: { token: leaving.token }, headers: { origin: web } }))
      assert.strictEqual(signedIn.status, 200)
      const session = yield* request("POST", "/api/sessions", { token: leaving.token, body: {} })
      assert.strictEqual((yield* request("POST", `/api/sessions/${session.body.session.id}/prompt`, { token: leaving.token, body: { text: "queued" } })).status, 202)

      const report = yield* (yield* Offboarding).offboard(leaving.orgId)
      assert.deepInclude(report.ended, { apiTokens: 1, browserSessions: 1, pendingCommands: 1, sessions: 1 })
      assert.isTrue(Object.values(report.remaining).every((count) => count === 0), JSON.stringify(report.remaining))

      // Offboarded elsewhere (the CLI): the web process drops the org's cached tokens on the pushed notification.
      const deadline = Date.now() + 3_000
      let status = 0
      while (Date.now() < deadline && (status = (yield* request("GET", "/api/sessions", { token: leaving.token })).status) !== 401) {
        yield* Effect.sleep("20 millis")
      }
      assert.strictEqual(status, 401, "the offboarded org's token was still accepted after 3 s")
      assert.strictEqual((yield* Effect.promise(() => browser.request("GET", `${web}/api/workspace`))).status, 401)
      const again = yield* Effect.promise(() =>
        browser.request("POST", `${web}/auth/token-login`, { json: { token: leaving.token }, headers: { origin: web } }))
      assert.strictEqual(again.status, 401, "the revoked owner token cannot sign a browser in again")
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: staying.token })).status, 200)
    })))
})
