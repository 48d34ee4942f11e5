import { Metrics } from "@cowork/observability"
import { Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

const REASONS = ["missing_credentials", "invalid_token", "expired_token", "revoked_token", "forbidden_scope"] as const

it.layer(layer)("auth failure reasons", (it) => {
  it.effect("expired and revoked tokens are counted by reason, while every 401 body stays the same generic one", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const tokens = yield* Tokens
      const counts = Effect.forEach(REASONS, (reason) => metrics.read("open_cowork_cloud_auth_failures_total", { reason }))
      const { orgId, token: live } = yield* orgWithToken(["web"])
      const expired = yield* tokens.issue({ orgId, name: "expired", scopes: ["web"], expiresInMs: -60_000 })
      const revoked = yield* tokens.issue({ orgId, name: "revoked", scopes: ["web"] })
      assert.isNotNull((yield* tokens.revoke(revoked.tokenId, { orgId })).revokedAt)
      const before = yield* counts

      const refused = [
        yield* request("GET", "/api/sessions"), // missing_credentials
        yield* request("GET", "/api/sessions", { token: "nonsense" }), // invalid_token (malformed)
        yield* request("GET", "/api/sessions", { token: `occ_${"A".repeat(20)}_${"b".repeat(43)}` }), // invalid_token (unknown id)
        // The revoked token's id with a wrong secret: invalid, NOT revoked — only the real secret learns more.
        yield* request("GET", "/api/sessions", { token: `occ_${revoked.tokenId}_${"c".repeat(43)}` }),
        yield* request("GET", "/api/sessions", { token: Redacted.value(expired.token) }), // expired_token
        yield* request("GET", "/api/sessions", { token: Redacted.value(revoked.token) }) // revoked_token
      ]
      for (const response of refused) {
        assert.strictEqual(response.status, 401)
        assert.deepStrictEqual(response.body, refused[0]!.body, "one generic body: it never says whether a token exists")
      }
      assert.deepStrictEqual(refused[0]!.body, { error: { code: "unauthorized", message: "missing or invalid bearer token" } })
      assert.notMatch(JSON.stringify(refused.map((r) => r.body)), /expired|revoked/)

      const operatorOnly = yield* orgWithToken(["operator"])
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: operatorOnly.token })).status, 403)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: live })).status, 200)

      const after = yield* counts
      const delta = Object.fromEntries(REASONS.map((reason, i) => [reason, after[i]! - before[i]!]))
      assert.deepStrictEqual(delta, {
        missing_credentials: 1,
        invalid_token: 3,
        expired_token: 1,
        revoked_token: 1,
        forbidden_scope: 1
      })
    }))
})
