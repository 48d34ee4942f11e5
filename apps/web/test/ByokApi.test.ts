import { FakeModelServer } from "@cowork/runtime"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

// The fake provider listens on plain http on loopback: allowed only by these switches.
process.env.OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP = "true"
process.env.OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS = "127.0.0.1"

const fake = Effect.acquireRelease(
  Effect.promise(() => FakeModelServer.start({ refuseAuthorizationContaining: "refused" })),
  (server) => Effect.promise(() => server.close())
)

it.layer(layer)("BYOK API", (it) => {
  it.effect("store, list (metadata only), validate through a bounded call, delete; another org sees nothing", () =>
    Effect.gen(function*() {
      const provider = yield* fake
      const admin = yield* orgWithToken(["web", "admin"])
      const member = yield* orgWithToken(["web"])
      const other = yield* orgWithToken(["web", "admin"])
      const apiKey = `sk-canary-${Crypto.randomBytes(16).toString("hex")}`

      const stored = yield* request("POST", "/api/byok/openai", { token: admin.token, body: { apiKey, baseUrl: provider.url } })
      assert.strictEqual(stored.status, 200)
      assert.deepStrictEqual(Object.keys(stored.body.key).sort(), ["fingerprint", "health", "last4", "provider", "status", "updatedAt"])
      assert.strictEqual(stored.body.key.last4, apiKey.slice(-4))
      assert.strictEqual(stored.body.key.health, "unknown")

      const listed = yield* request("GET", "/api/byok", { token: admin.token })
      assert.strictEqual(listed.status, 200)
      assert.deepStrictEqual(listed.body.keys, [stored.body.key])
      assert.notInclude(JSON.stringify(listed.body), apiKey.slice(0, 24))

      // Members read metadata; only admins write, delete or validate.
      assert.strictEqual((yield* request("GET", "/api/byok", { token: member.token })).status, 200)
      assert.strictEqual((yield* request("POST", "/api/byok/openai", { token: member.token, body: { apiKey } })).status, 403)
      assert.strictEqual((yield* request("POST", "/api/byok/openai/validate", { token: member.token })).status, 403)

      // Another org: nothing to see, nothing to delete or validate.
      assert.deepStrictEqual((yield* request("GET", "/api/byok", { token: other.token })).body.keys, [])
      assert.strictEqual((yield* request("DELETE", "/api/byok/openai", { token: other.token })).status, 404)
      assert.strictEqual((yield* request("POST", "/api/byok/openai/validate", { token: other.token })).status, 404)

      const validated = yield* request("POST", "/api/byok/openai/validate", { token: admin.token })
      assert.strictEqual(validated.status, 200)
      assert.strictEqual(validated.body.ok, true)
      assert.strictEqual(validated.body.upstreamStatus, 200)
      assert.strictEqual(validated.body.key.health, "ok")
      assert.notInclude(JSON.stringify(validated.body), apiKey.slice(0, 24))
      const probe = provider.requests.find((r) => r.path.endsWith("/models"))
      assert.strictEqual(probe?.headers.authorization, `Bearer ${apiKey}`, "the provider got the key as a bearer token")

      // A key the provider refuses is recorded as failing.
      yield* request("POST", "/api/byok/openai", { token: admin.token, body: { apiKey: "sk-refused-0000", baseUrl: provider.url } })
      const refused = yield* request("POST", "/api/byok/openai/validate", { token: admin.token })
      assert.deepInclude(refused.body, { ok: false, upstreamStatus: 401 })
      assert.strictEqual(refused.body.key.health, "failing")

      assert.deepStrictEqual((yield* request("DELETE", "/api/byok/openai", { token: admin.token })).body, { deleted: true })
      assert.deepStrictEqual((yield* request("GET", "/api/byok", { token: admin.token })).body.keys, [])
      assert.strictEqual((yield* request("DELETE", "/api/byok/openai", { token: admin.token })).status, 404)
    }).pipe(Effect.scoped))

  it.effect("bounded inputs: 400 naming the field, never 500", () =>
    Effect.gen(function*() {
      const admin = yield* orgWithToken(["web", "admin"])
      const cases: Array<[string, unknown, string]> = [
        ["/api/byok/openai", { apiKey: "short" }, "apiKey"],
        ["/api/byok/openai", { apiKey: "x".repeat(5_000) }, "apiKey"],
        ["/api/byok/openai", { apiKey: "sk-long-enough", baseUrl: "ftp://example.com/v1" }, "baseUrl"],
        ["/api/byok/openai", { apiKey: "sk-long-enough", baseUrl: "https://user:pw@example.com/v1" }, "baseUrl"],
        ["/api/byok/custom", { apiKey: "sk-long-enough" }, "baseUrl"]
      ]
      for (const [path, body, field] of cases) {
        const response = yield* request("POST", path, { token: admin.token, body })
        assert.strictEqual(response.status, 400, `${JSON.stringify(body)}`)
        assert.include(JSON.stringify(response.body.error), field)
      }
      assert.strictEqual((yield* request("POST", "/api/byok/Not!A!Provider", { token: admin.token, body: { apiKey: "sk-long-enough" } })).status, 400)
    }))
})
