import { Metrics } from "@cowork/observability"
import { Quotas } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

const rejections = (quota: "artifact_bytes_per_day" | "concurrent_sessions" | "active_workers" | "workflow_runs_per_hour") =>
  Effect.flatMap(Effect.service(Metrics), (metrics) => metrics.read("open_cowork_cloud_quota_rejections_total", { quota }))

const upload = (token: string, sessionId: string, text: string) =>
  request("POST", `/api/sessions/${sessionId}/artifacts?name=a.txt`, { token, rawBody: text, headers: { "content-type": "text/plain" } })

/** Issue 12: the quotas beyond prompts — artifact bytes per day, concurrent sessions — refused with 429 where work is admitted. */
it.layer(layer)("org quotas at admission", (it) => {
  it.effect("artifact bytes per day: the upload that would pass the quota is 429 with Retry-After, stores nothing; other orgs upload", () =>
    Effect.gen(function*() {
      const acme = yield* orgWithToken(["web"])
      const other = yield* orgWithToken(["web"])
      yield* (yield* Quotas).setOverride(acme.orgId, "artifact_bytes_per_day", 10)
      const session = (yield* request("POST", "/api/sessions", { token: acme.token, body: {} })).body.session.id as string
      assert.strictEqual((yield* upload(acme.token, session, "12345678")).status, 201)
      const before = yield* rejections("artifact_bytes_per_day")
      const refused = yield* upload(acme.token, session, "12345")
      assert.strictEqual(refused.status, 429)
      assert.deepInclude(refused.body.error, { code: "rate_limited", details: { quota: "artifact_bytes_per_day", limit: 10 } })
      assert.isAbove(refused.body.error.retryAfterMs ?? refused.body.retryAfterMs, 0)
      const retryAfter = Number(refused.headers.get("retry-after"))
      assert.isAbove(retryAfter, 0)
      assert.isAtMost(retryAfter, 86_400, "at most until the UTC day ends")
      assert.strictEqual((yield* rejections("artifact_bytes_per_day")) - before, 1)
      const listed = yield* request("GET", `/api/sessions/${session}/artifacts`, { token: acme.token })
      assert.strictEqual(listed.body.artifacts.length, 1, "the refused upload left no artifact")
      assert.strictEqual((yield* upload(acme.token, session, "12")).status, 201, "what still fits is accepted")

      const theirs = (yield* request("POST", "/api/sessions", { token: other.token, body: {} })).body.session.id as string
      assert.strictEqual((yield* upload(other.token, theirs, "12345678901234567890")).status, 201)
    }))

  it.effect("concurrent sessions: a prompt that would start one more working session is 429; the working one takes more", () =>
    Effect.gen(function*() {
      const acme = yield* orgWithToken(["web"])
      yield* (yield* Quotas).setOverride(acme.orgId, "concurrent_sessions", 1)
      const first = (yield* request("POST", "/api/sessions", { token: acme.token, body: {} })).body.session.id as string
      const second = (yield* request("POST", "/api/sessions", { token: acme.token, body: {} })).body.session.id as string
      assert.strictEqual((yield* request("POST", `/api/sessions/${first}/prompt`, { token: acme.token, body: { text: "a" } })).status, 202)
      assert.strictEqual((yield* request("POST", `/api/sessions/${first}/prompt`, { token: acme.token, body: { text: "b" } })).status, 202)
      const before = yield* rejections("concurrent_sessions")
      const refused = yield* request("POST", `/api/sessions/${second}/prompt`, { token: acme.token, body: { text: "c" } })
      assert.strictEqual(refused.status, 429)
      assert.deepInclude(refused.body.error.details, { quota: "concurrent_sessions", limit: 1 })
      assert.isAbove(Number(refused.headers.get("retry-after")), 0)
      assert.strictEqual((yield* rejections("concurrent_sessions")) - before, 1)
      const policy = yield* request("GET", "/api/usage/summary", { token: acme.token })
      assert.deepInclude(policy.body.quotas, { concurrent_sessions: 1, artifact_bytes_per_day: 10 * 1024 ** 3 })
    }))

  it.effect("active workers: an org operator registering a worker past the org's quota gets 429", () =>
    Effect.gen(function*() {
      const acme = yield* orgWithToken(["operator"])
      yield* (yield* Quotas).setOverride(acme.orgId, "active_workers", 1)
      const pool = (yield* request("POST", "/api/admin/worker-pools", {
        token: acme.token,
        body: { name: "own", mode: "self_hosted", maxWorkers: 5, maxConcurrentWork: 1 }
      })).body.pool.id as string
      assert.strictEqual((yield* request("POST", "/api/admin/workers", { token: acme.token, body: { poolId: pool } })).status, 201)
      const before = yield* rejections("active_workers")
      const refused = yield* request("POST", "/api/admin/workers", { token: acme.token, body: { poolId: pool } })
      assert.strictEqual(refused.status, 429)
      assert.deepInclude(refused.body.error.details, { quota: "active_workers", limit: 1 })
      assert.isAbove(Number(refused.headers.get("retry-after")), 0)
      assert.strictEqual((yield* rejections("active_workers")) - before, 1)
    }))

  it.effect("workflow runs per hour: the manual run past the quota is 429 with Retry-After and records no run; other orgs run", () =>
    Effect.gen(function*() {
      const acme = yield* orgWithToken(["web"])
      const other = yield* orgWithToken(["web"])
      yield* (yield* Quotas).setOverride(acme.orgId, "workflow_runs_per_hour", 2)
      const workflow = (token: string) =>
        Effect.map(
          request("POST", "/api/workflows", {
            token,
            body: { title: "report", instructions: "summarise", agentName: "build", triggers: [{ type: "manual", enabled: true }] }
          }),
          (response) => response.body.workflow.id as string
        )
      const ours = yield* workflow(acme.token)
      for (let i = 0; i < 2; i++) assert.strictEqual((yield* request("POST", `/api/workflows/${ours}/run`, { token: acme.token })).status, 202)
      const before = yield* rejections("workflow_runs_per_hour")
      const refused = yield* request("POST", `/api/workflows/${ours}/run`, { token: acme.token })
      assert.strictEqual(refused.status, 429)
      assert.deepInclude(refused.body.error, { code: "rate_limited", details: { quota: "workflow_runs_per_hour", limit: 2 } })
      assert.isAbove(refused.body.error.retryAfterMs ?? refused.body.retryAfterMs, 0)
      const retryAfter = Number(refused.headers.get("retry-after"))
      assert.isAbove(retryAfter, 0)
      assert.isAtMost(retryAfter, 3_600, "at most until the clock hour ends")
      assert.strictEqual((yield* rejections("workflow_runs_per_hour")) - before, 1)
      const runs = yield* request("GET", `/api/workflows/${ours}/runs`, { token: acme.token })
      assert.strictEqual(runs.body.runs.length, 2, "the refused run left no run (and no session)")

      const theirs = yield* workflow(other.token)
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* request("POST", `/api/workflows/${theirs}/run`, { token: other.token })).status, 202)
    }))

  it.effect("quota window rows that ended over a day ago are deleted when the org opens a new window", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const acme = yield* orgWithToken(["web"])
      yield* sql.unsafe(
        `INSERT INTO cloud_quota_windows (org_id, quota, window_start, used) VALUES
           ($1, 'prompts_per_hour', date_trunc('hour', now()) - interval '3 days', 7),
           ($1, 'artifact_bytes_per_day', date_trunc('day', now()) - interval '5 days', 9)`,
        [acme.orgId]
      ).pipe(Effect.orDie)
      const session = (yield* request("POST", "/api/sessions", { token: acme.token, body: {} })).body.session.id as string
      assert.strictEqual((yield* request("POST", `/api/sessions/${session}/prompt`, { token: acme.token, body: { text: "a" } })).status, 202)
      const rows = yield* sql.unsafe<{ quota: string }>(
        `SELECT quota FROM cloud_quota_windows WHERE org_id = $1 ORDER BY quota`,
        [acme.orgId]
      ).pipe(Effect.orDie)
      assert.deepStrictEqual(rows.map((row) => row.quota), ["prompts_per_hour"], "only the current window is left")
    }))
})
