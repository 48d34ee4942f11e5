import { FakeModelServer } from "@cowork/runtime"
import { Audit } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import { layer, orgWithToken, platformToken, request, tokenFor } from "./support/WebTestServer.ts"

// The fake provider listens on plain http on loopback: allowed only by these switches.
process.env.OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP = "true"
process.env.OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS = "127.0.0.1"

const fake = Effect.acquireRelease(
  Effect.promise(() => FakeModelServer.start({ refuseAuthorizationContaining: "refused" })),
  (server) => Effect.promise(() => server.close())
)

const tokenIdOf = (token: string) => token.split("_")[1]!

/** Issue 12: token and BYOK changes are audited — who, what, when, the request id — and no secret is ever written. */
it.layer(layer)("audit of token and BYOK changes", (it) => {
  it.effect("token create / revoke and BYOK set / rotate / validate / delete each leave one row, without plaintext", () =>
    Effect.gen(function*() {
      const provider = yield* fake
      const { orgId, token: admin } = yield* orgWithToken(["web", "admin"])
      const adminId = tokenIdOf(admin)
      const firstKey = `sk-canary-${Crypto.randomBytes(16).toString("hex")}`
      const secondKey = `sk-refused-${Crypto.randomBytes(16).toString("hex")}`

      const created = yield* request("POST", "/api/api-tokens", {
        token: admin,
        body: { name: "ci", scopes: ["web"] },
        headers: { "x-request-id": "req-token-create" }
      })
      assert.strictEqual(created.status, 201)
      const newId = created.body.token.id as string
      assert.strictEqual((yield* request("DELETE", `/api/api-tokens/${newId}`, { token: admin })).status, 200)

      assert.strictEqual((yield* request("POST", "/api/byok/openai", { token: admin, body: { apiKey: firstKey, baseUrl: provider.url } })).status, 200)
      assert.strictEqual((yield* request("POST", "/api/byok/openai/validate", { token: admin })).body.ok, true)
      const rotated = yield* request("POST", "/api/byok/openai", { token: admin, body: { apiKey: secondKey, baseUrl: provider.url } })
      assert.strictEqual((yield* request("POST", "/api/byok/openai/validate", { token: admin })).body.ok, false)
      assert.strictEqual((yield* request("DELETE", "/api/byok/openai", { token: admin })).status, 200)

      const page = yield* request("GET", "/api/admin/audit?limit=50", { token: admin })
      assert.strictEqual(page.status, 200)
      const events = [...page.body.events].reverse() as Array<any>
      assert.deepStrictEqual(
        events.map((event) => [event.action, event.actor, event.target]),
        [
          ["token.created", `token:${adminId}`, `token:${newId}`],
          ["token.revoked", `token:${adminId}`, `token:${newId}`],
          ["byok.set", `token:${adminId}`, "byok:openai"],
          ["byok.validated", `token:${adminId}`, "byok:openai"],
          ["byok.rotated", `token:${adminId}`, "byok:openai"],
          ["byok.validated", `token:${adminId}`, "byok:openai"],
          ["byok.deleted", `token:${adminId}`, "byok:openai"]
        ]
      )
      assert.strictEqual(events[0].requestId, "req-token-create")
      assert.deepInclude(events[0].details, { name: "ci", scopes: ["web"] })
      assert.deepInclude(events[3].details, { ok: true, upstreamStatus: 200 })
      assert.deepInclude(events[4].details, { fingerprint: rotated.body.key.fingerprint })
      assert.deepInclude(events[5].details, { ok: false, upstreamStatus: 401 })
      for (const event of events) assert.isString(event.at)
      const text = JSON.stringify(page.body)
      for (const secret of [firstKey, secondKey, created.body.secret as string, admin]) {
        assert.notInclude(text, secret.slice(-24), "no plaintext key or token in the audit log")
      }
      assert.strictEqual((yield* (yield* Audit).list(orgId, { limit: 50, action: "token.created" })).events.length, 1)
    }))

  it.effect("POST /api/admin/orgs/:id/offboard: a platform operator offboards an org, its token is refused at once, audited; another org's operator gets 404", () =>
    Effect.gen(function*() {
      const leaving = yield* orgWithToken(["web", "admin", "operator"])
      const staying = yield* orgWithToken(["web", "admin", "operator"])
      const member = yield* tokenFor(leaving.orgId, ["web"])
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: member })).status, 200)
      const platform = yield* platformToken

      const foreign = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard`, { token: staying.token })
      assert.strictEqual(foreign.status, 404, "another org's operator token cannot offboard this org")
      assert.strictEqual((yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard`, { token: member })).status, 403)
      assert.strictEqual((yield* request("POST", "/api/admin/orgs/org_nope/offboard", { token: platform })).status, 404)

      const offboarded = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard`, { token: platform })
      assert.strictEqual(offboarded.status, 200)
      assert.deepInclude(offboarded.body.ended, { apiTokens: 2 })
      assert.isTrue(offboarded.body.complete)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: member })).status, 401, "refused at once on this process")
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: staying.token })).status, 200)

      const again = yield* request("POST", `/api/admin/orgs/${leaving.orgId}/offboard`, { token: platform })
      assert.strictEqual(again.status, 200)
      assert.strictEqual(again.body.offboardedAt, offboarded.body.offboardedAt)
      assert.deepInclude(again.body.ended, { apiTokens: 0 })

      const audit = yield* (yield* Audit).list(leaving.orgId, { limit: 10, action: "org.offboarded" })
      assert.strictEqual(audit.events.length, 2)
      assert.strictEqual(audit.events[1]!.actor, `platform-token:${tokenIdOf(platform)}`)
      assert.strictEqual(audit.events[1]!.target, `org:${leaving.orgId}`)
    }))

  it.effect("channel admin actions are audited: binding create / update / delete, gateway token create and revoke, identity link", () =>
    Effect.gen(function*() {
      const { orgId, token: admin } = yield* orgWithToken(["web", "admin"])
      const adminId = tokenIdOf(admin)
      const binding = yield* request("POST", "/api/channels/bindings", {
        token: admin,
        body: { providerKind: "telegram", providerId: "tg-main", displayName: "chat", externalTarget: "-1001", credentialRef: "file:telegram-bot-token" }
      })
      const bindingId = binding.body.binding.id as string
      assert.strictEqual((yield* request("PATCH", `/api/channels/bindings/${bindingId}`, { token: admin, body: { displayName: "team" } })).status, 200)
      const issued = yield* request("POST", "/api/channels/gateway-tokens", {
        token: admin,
        body: { name: "gw", channelBindingIds: [bindingId] },
        headers: { "x-request-id": "req-gateway-token" }
      })
      assert.strictEqual(issued.status, 201)
      const gatewayId = issued.body.token.id as string
      assert.strictEqual((yield* request("DELETE", `/api/api-tokens/${gatewayId}`, { token: admin })).status, 200)
      assert.strictEqual((yield* request("DELETE", `/api/channels/bindings/${bindingId}`, { token: admin })).status, 200)

      const events = [...(yield* (yield* Audit).list(orgId, { limit: 50 })).events].reverse()
      assert.deepStrictEqual(events.map((event) => [event.action, event.actor, event.target]), [
        ["channel.binding_created", `token:${adminId}`, `channel_binding:${bindingId}`],
        ["channel.binding_updated", `token:${adminId}`, `channel_binding:${bindingId}`],
        ["token.created", `token:${adminId}`, `token:${gatewayId}`],
        ["token.revoked", `token:${adminId}`, `token:${gatewayId}`],
        ["channel.binding_deleted", `token:${adminId}`, `channel_binding:${bindingId}`]
      ])
      assert.deepInclude(events[2]!.details, { name: "gw", scopes: ["gateway"], channelBindingIds: [bindingId] })
      assert.strictEqual(events[2]!.requestId, "req-gateway-token")
      assert.deepInclude(events[1]!.details, { fields: ["displayName"] })
      assert.notInclude(JSON.stringify(events), "telegram-bot-token", "no credential reference in the log")
    }))
})
