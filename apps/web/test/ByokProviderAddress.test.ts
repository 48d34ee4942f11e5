import { FakeModelServer } from "@cowork/runtime"
import { ByokStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

// No allow-list: an org's provider URL must reach public addresses only. Plain http is on so that the loopback
// fake provider below is refused for its address, not its scheme.
process.env.OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP = "true"
process.env.OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS = ""

it.layer(layer)("BYOK provider addresses (SSRF)", (it) => {
  it.effect("a baseUrl that resolves to a loopback, private, link-local, CGNAT, multicast or unspecified address is a 400 naming baseUrl", () =>
    Effect.gen(function*() {
      const admin = yield* orgWithToken(["web", "admin"])
      for (const baseUrl of [
        "https://127.0.0.1/v1", "https://localhost:8443/v1", "https://[::1]/v1", "https://10.0.0.7/v1", "https://172.20.1.1/v1",
        "https://192.168.0.10/v1", "https://[fd00::5]/v1", "https://169.254.169.254/latest", "https://[fe80::1]/v1",
        "https://100.64.0.1/v1", "https://224.0.0.251/v1", "https://0.0.0.0/v1", "https://[::ffff:127.0.0.1]/v1"
      ]) {
        const refused = yield* request("POST", "/api/byok/openai", { token: admin.token, body: { apiKey: "sk-ssrf-000000", baseUrl } })
        assert.strictEqual(refused.status, 400, baseUrl)
        assert.strictEqual(refused.body.error.details.field, "baseUrl", JSON.stringify(refused.body))
        assert.include(refused.body.error.message, "OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS")
      }
      assert.deepStrictEqual((yield* request("GET", "/api/byok", { token: admin.token })).body.keys, [], "nothing was stored")
    }))

  it.effect("validate refuses a stored key whose base URL is not public without sending it anything, and marks it failing", () =>
    Effect.gen(function*() {
      const provider = yield* Effect.acquireRelease(Effect.promise(() => FakeModelServer.start()), (s) => Effect.promise(() => s.close()))
      const admin = yield* orgWithToken(["web", "admin"])
      // Stored before the rule, or a name whose address changed since: the validate call checks on its own connection.
      yield* (yield* ByokStore).put(admin.orgId, "openai", { apiKey: Redacted.make("sk-ssrf-111111"), baseUrl: provider.url.replace("127.0.0.1", "localhost") })
      const validated = yield* request("POST", "/api/byok/openai/validate", { token: admin.token })
      assert.strictEqual(validated.status, 400, JSON.stringify(validated.body))
      assert.strictEqual(validated.body.error.details.field, "baseUrl")
      assert.include(validated.body.error.message, "loopback")
      assert.deepStrictEqual(provider.requests, [], "the loopback provider got nothing")
      assert.strictEqual((yield* request("GET", "/api/byok", { token: admin.token })).body.keys[0].health, "failing")
    }))
})
