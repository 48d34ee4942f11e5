import { PgLeaseStore, PgOffboarding } from "@cowork/postgres"
import { Artifacts, Audit, EventLog, LeaseStore, ObjectStore, Offboarding } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Browser } from "./support/Browser.ts"
import { baseUrl, bindingWithGatewayToken, layer, orgWithToken, platformToken, request } from "./support/WebTestServer.ts"

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

  it.effect("the route ends the org's channels: bindings disabled, deliveries dead-lettered, its gateway token refused", () =>
    TestClock.withLive(Effect.gen(function*() {
      const leaving = yield* orgWithToken(["admin", "operator", "web"])
      const { bindingId, gatewayToken: gateway } = yield* bindingWithGatewayToken(leaving.token)
      const prompted = yield* request("POST", `/api/channels/bindings/${bindingId}/prompt`, {
        token: gateway,
        body: { providerEventId: "u-1", externalThreadId: "chat-1", externalUserId: "user-1", text: "hi" }
      })
      assert.strictEqual(prompted.status, 202, JSON.stringify(prompted.body))
      const sessionId = prompted.body.sessionId as string
      yield* Effect.gen(function*() {
        const lease = (yield* (yield* LeaseStore).claim(`w-${sessionId}`, 100, 30_000, 3)).find((l) => l.sessionId === sessionId)!
        yield* (yield* EventLog).append(lease, ["one", "two"].map((text) => ({
          type: "assistant.message" as const,
          payload: { messageId: `m-${text}`, text, final: true }
        })))
      }).pipe(Effect.provide(PgLeaseStore.layer), Effect.orDie)
      const claimed = yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: { limit: 1 } })
      assert.strictEqual(claimed.body.deliveries.length, 1)

      const offboarded = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard`, { token: leaving.token })
      assert.strictEqual(offboarded.status, 200, JSON.stringify(offboarded.body))
      assert.deepInclude(offboarded.body.ended, { apiTokens: 2, gatewayTokens: 1, channelBindings: 1, deliveries: 2 })
      assert.deepInclude(offboarded.body.remaining, { liveGatewayTokens: 0, activeChannelBindings: 0, openDeliveries: 0 })
      assert.isTrue(offboarded.body.complete)
      assert.strictEqual((yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: {} })).status, 401)
      const ack = yield* request("POST", `/api/channels/deliveries/${claimed.body.deliveries[0].id}/ack`, {
        token: gateway,
        body: { claimToken: claimed.body.deliveries[0].claimToken, outcome: "sent" }
      })
      assert.strictEqual(ack.status, 401, "a gateway mid-send is refused")
      assert.deepStrictEqual(offboarded.body.artifacts, { policy: "retain", deleted: 0, deletedBytes: 0, strayObjects: 0, remaining: 0 })
    })))

  it.effect("artifacts by retention policy: retain keeps them (reported), delete removes objects and rows; audit rows stay", () =>
    TestClock.withLive(Effect.gen(function*() {
      const leaving = yield* orgWithToken(["admin", "operator", "web"])
      const session = (yield* request("POST", "/api/sessions", { token: leaving.token, body: {} })).body.session.id as string
      for (const text of ["first", "second"]) {
        const uploaded = yield* request("POST", `/api/sessions/${session}/artifacts?name=a.txt`, {
          token: leaving.token,
          rawBody: text,
          headers: { "content-type": "text/plain" }
        })
        assert.strictEqual(uploaded.status, 201, JSON.stringify(uploaded.body))
      }
      const bad = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard?artifacts=shred`, { token: leaving.token })
      assert.strictEqual(bad.status, 400, "an unknown policy is refused before anything happens")
      const exportOverHttp = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard?artifacts=export`, { token: leaving.token })
      assert.strictEqual(exportOverHttp.status, 400, "an export writes to the operator's disk: `admin org offboard --artifacts export`, no route")

      const retained = yield* (yield* Offboarding).offboard(leaving.orgId).pipe(
        Effect.andThen(Effect.flatMap(Effect.service(Artifacts), (artifacts) => artifacts.countOrg(leaving.orgId)))
      )
      assert.strictEqual(retained, 2, "offboarding alone keeps the artifacts")

      const platform = yield* platformToken
      const deleted = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard?artifacts=delete`, { token: platform })
      assert.strictEqual(deleted.status, 200, JSON.stringify(deleted.body))
      assert.deepStrictEqual(deleted.body.artifacts, { policy: "delete", deleted: 2, deletedBytes: 11, strayObjects: 0, remaining: 0 })
      assert.deepStrictEqual(yield* (yield* ObjectStore).list(`artifacts/${leaving.orgId}/`), [])
      const audit = yield* (yield* Audit).list(leaving.orgId, { action: "org.offboarded", limit: 10 })
      assert.isAtLeast(audit.events.length, 1, "the audit rows stay, with what was done to the artifacts")
      assert.deepInclude(audit.events[0]!.details, { artifacts: deleted.body.artifacts })
    })))
})
