import { Metrics } from "@cowork/observability"
import { assert, it } from "@effect/vitest"
import { Quotas, Tokens } from "@cowork/services"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { orgWithToken, request, serverLayer } from "./support/WebTestServer.ts"

const layer = serverLayer.pipe(
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "5",
    OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "8",
    OPEN_COWORK_CLOUD_AUTH_FAILURES_PER_MIN: "10",
    OPEN_COWORK_CLOUD_AUTH_BLOCK_MS: "60000",
    OPEN_COWORK_CLOUD_QUOTA_PROMPTS_PER_HOUR: "2"
  }), { asPrimary: true })),
  Layer.provideMerge(TestDatabase.layer())
)

const limited = (scope: "principal" | "org" | "auth_backoff") =>
  Effect.gen(function*() {
    return yield* (yield* Metrics).read("open_cowork_cloud_rate_limited_total", { scope })
  })

it.layer(layer)("request rate limits and authentication back-off (in process memory)", (it) => {
  it.effect("per principal and per org: 429 with Retry-After and retryAfterMs; another org is unaffected", () =>
    Effect.gen(function*() {
      const acme = yield* orgWithToken(["web"])
      const principalBefore = yield* limited("principal")
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* request("GET", "/api/sessions", { token: acme.token })).status, 200, `request ${i + 1}`)
      const refused = yield* request("GET", "/api/sessions", { token: acme.token })
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.body.error.code, "rate_limited")
      assert.isAtLeast(refused.body.retryAfterMs, 1)
      assert.isAtMost(refused.body.retryAfterMs, 12_000, "one token every 12 s at 5 per minute")
      assert.strictEqual(refused.headers.get("retry-after"), String(Math.ceil(refused.body.retryAfterMs / 1000)))
      assert.strictEqual((yield* limited("principal")) - principalBefore, 1)

      // The org's budget (8 per minute) is shared by its principals: a second token gets what is left.
      const second = yield* (yield* Tokens).issue({ orgId: acme.orgId, name: "second", scopes: ["web"] })
      const secondToken = Redacted.value(second.token)
      const orgBefore = yield* limited("org")
      const statuses: Array<number> = []
      for (let i = 0; i < 4; i++) statuses.push((yield* request("GET", "/api/sessions", { token: secondToken })).status)
      assert.deepStrictEqual(statuses, [200, 200, 200, 429], "5 + 3 = the org's 8")
      assert.strictEqual((yield* limited("org")) - orgBefore, 1)

      const other = yield* orgWithToken(["web"])
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: other.token })).status, 200, "another org is unaffected")
    }))

  it.effect("org quota: the prompt past prompts_per_hour is 429 with Retry-After, counted; an override lifts it for that org only; /api/admin/policy shows it", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const acme = yield* orgWithToken(["web", "admin"])
      const created = yield* request("POST", "/api/sessions", { token: acme.token, body: {} })
      const path = `/api/sessions/${created.body.session.id}/prompt`
      const before = yield* metrics.read("open_cowork_cloud_quota_rejections_total", { quota: "prompts_per_hour" })
      assert.strictEqual((yield* request("POST", path, { token: acme.token, body: { text: "one" } })).status, 202)
      assert.strictEqual((yield* request("POST", path, { token: acme.token, body: { text: "two" } })).status, 202)
      const refused = yield* request("POST", path, { token: acme.token, body: { text: "three" } })
      assert.strictEqual(refused.status, 429)
      assert.deepInclude(refused.body.error, { code: "rate_limited", details: { quota: "prompts_per_hour", limit: 2 } })
      assert.isAbove(refused.body.retryAfterMs, 0)
      assert.strictEqual(refused.headers.get("retry-after"), String(Math.max(1, Math.ceil(refused.body.retryAfterMs / 1000))))
      assert.strictEqual((yield* metrics.read("open_cowork_cloud_quota_rejections_total", { quota: "prompts_per_hour" })) - before, 1)

      const policy = yield* request("GET", "/api/admin/policy", { token: acme.token })
      assert.strictEqual(policy.status, 200, JSON.stringify(policy.body))
      assert.deepInclude(policy.body.quotas, { prompts_per_hour: 2 })
      assert.deepInclude(policy.body.rateLimits, { principalPerMinute: 5, orgPerMinute: 8 })
      yield* (yield* Quotas).setOverride(acme.orgId, "prompts_per_hour", 3)
      // A second token of the org: the first one has used its 5 requests a minute.
      const colleague = Redacted.value((yield* (yield* Tokens).issue({ orgId: acme.orgId, name: "colleague", scopes: ["web"] })).token)
      const lifted = yield* request("POST", path, { token: colleague, body: { text: "three" } })
      assert.strictEqual(lifted.status, 202, JSON.stringify(lifted.body))
      const capped = yield* request("POST", path, { token: colleague, body: { text: "four" } })
      assert.strictEqual(capped.body.error?.details?.limit, 3, "the override applies at once")

      const other = yield* orgWithToken(["web"])
      const otherSession = yield* request("POST", "/api/sessions", { token: other.token, body: {} })
      const otherPath = `/api/sessions/${otherSession.body.session.id}/prompt`
      assert.strictEqual((yield* request("POST", otherPath, { token: other.token, body: { text: "mine" } })).status, 202, "another org has its own quota")
    }))

  it.effect("ten failed authentications from one address block it for 60 s, even with a good token; missing credentials do not count", () =>
    Effect.gen(function*() {
      const good = yield* orgWithToken(["web"])
      for (let i = 0; i < 12; i++) assert.strictEqual((yield* request("GET", "/api/sessions")).status, 401, "no credentials: plain 401s")
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: good.token })).status, 200)
      const before = yield* limited("auth_backoff")
      // Five refused bearer tokens and five refused token logins: both count toward the same back-off.
      for (let i = 0; i < 5; i++) {
        assert.strictEqual((yield* request("GET", "/api/sessions", { token: `occ_${"A".repeat(20)}_${"x".repeat(43)}` })).status, 401)
        const guessed = yield* request("POST", "/auth/token-login", { body: { token: `occ_${"B".repeat(20)}_${"y".repeat(43)}` } })
        assert.strictEqual(guessed.status, 401)
      }
      const blocked = yield* request("GET", "/api/sessions", { token: good.token })
      assert.strictEqual(blocked.status, 429)
      assert.isAbove(blocked.body.retryAfterMs, 50_000)
      assert.strictEqual(blocked.headers.get("retry-after"), "60")
      assert.strictEqual((yield* limited("auth_backoff")) - before, 1)
      const login = yield* request("POST", "/auth/token-login", { body: { token: good.token } })
      assert.strictEqual(login.status, 429, "a blocked address cannot sign a browser in either")
    }))
})
