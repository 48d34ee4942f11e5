import { appendEvents } from "@cowork/postgres"
import { Heartbeats } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { client, layer, orgWithToken, platformToken, request, tokenFor } from "./support/WebTestServer.ts"

const OPERATOR_GETS = ["/api/runtime/status", "/api/workers/heartbeats", "/api/diagnostics", "/api/metrics", "/metrics"]

it.layer(layer)("operator API", (it) => {
  it.effect("operator routes answer operator tokens only: tenant tokens 403, no token 401", () =>
    Effect.gen(function*() {
      const tenant = yield* orgWithToken(["web", "admin"])
      const operator = { token: yield* tokenFor(tenant.orgId, ["operator"]) }
      const session = (yield* request("POST", "/api/sessions", { token: tenant.token, body: {} })).body.session
      const routes: Array<[string, string]> = [
        ...OPERATOR_GETS.map((path): [string, string] => ["GET", path]),
        ["GET", `/api/sessions/${session.id}/projection-status`],
        ["POST", `/api/sessions/${session.id}/projection-repair`]
      ]
      for (const [method, path] of routes) {
        assert.strictEqual((yield* request(method, path, { token: operator.token })).status, 200, `${method} ${path} operator`)
        const forbidden = yield* request(method, path, { token: tenant.token })
        assert.strictEqual(forbidden.status, 403, `${method} ${path} tenant`)
        assert.strictEqual(forbidden.body.error.code, "forbidden")
        const anonymous = yield* request(method, path)
        assert.strictEqual(anonymous.status, 401, `${method} ${path} anonymous`)
      }
      const missing = yield* request("GET", "/api/sessions/ses_nope/projection-status", { token: operator.token })
      assert.strictEqual(missing.status, 404)
    }))

  it.effect("runtime status and heartbeats report workers with their age and freshness", () =>
    Effect.gen(function*() {
      const token = yield* platformToken
      const heartbeats = yield* Heartbeats
      yield* heartbeats.beat({
        workerId: "worker-op-1",
        role: "worker",
        poolId: null,
        status: "active",
        version: "0.1.0",
        region: "eu-test",
        capabilities: ["prompt", "abort"],
        currentLoad: 1,
        activeWorkIds: ["ses_x"]
      })
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO cloud_worker_heartbeats (worker_id, role, status, version, last_seen_at)
        VALUES ('scheduler-stale', 'scheduler', 'active', '0.1.0', now() - interval '10 minutes')`

      const api = yield* client(token)
      const list = yield* api.operator.heartbeats()
      const worker = list.heartbeats.find((beat) => beat.workerId === "worker-op-1")!
      assert.deepInclude(worker, { role: "worker", status: "active", region: "eu-test", currentLoad: 1, fresh: true })
      assert.deepStrictEqual(worker.activeWorkIds, ["ses_x"])
      assert.isBelow(worker.ageMs, 15_000)
      const scheduler = list.heartbeats.find((beat) => beat.workerId === "scheduler-stale")!
      assert.strictEqual(scheduler.fresh, false)
      assert.isAbove(scheduler.ageMs, 9 * 60_000)

      const status = yield* api.operator.runtimeStatus()
      assert.deepStrictEqual(status, {
        role: "web",
        profileName: "default",
        canExecute: true,
        commandProcessing: "external_workers",
        checkpoints: { enabled: false },
        runtime: { kinds: [] },
        heartbeats: { workers: 1, schedulers: 1, freshWorkers: 1, freshSchedulers: 0 }
      })
      // A fresh worker that checkpoints says so in its capabilities; runtime status reports it.
      yield* heartbeats.beat({
        workerId: "worker-op-1",
        role: "worker",
        poolId: null,
        status: "active",
        version: "0.1.0",
        region: "eu-test",
        capabilities: ["prompt", "abort", "checkpoints", "runtime:opencode"],
        currentLoad: 0,
        activeWorkIds: []
      })
      const withCheckpoints = yield* api.operator.runtimeStatus()
      assert.deepStrictEqual(withCheckpoints.checkpoints, { enabled: true })
      assert.deepStrictEqual(withCheckpoints.runtime, { kinds: ["opencode"] })
    }))

  it.effect("diagnostics: queue depth, oldest command age, leases, counters, links; marked redacted", () =>
    Effect.gen(function*() {
      const tenant = yield* orgWithToken(["web"])
      const operator = { token: yield* tokenFor(tenant.orgId, ["operator"]) }
      const tenantApi = yield* client(tenant.token)
      const { session } = yield* tenantApi.sessions.create({ payload: {} })
      yield* tenantApi.sessions.prompt({ params: { id: session.id }, payload: { text: "queued" } })
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE cloud_session_commands SET created_at = now() - interval '90 seconds' WHERE session_id = ${session.id}`
      const body = yield* (yield* client(operator.token)).operator.diagnostics()
      assert.strictEqual(body.redaction, "secrets-redacted")
      assert.isAtLeast(body.queues.depthEstimate, 1)
      assert.isAtLeast(body.queues.oldestCommandAgeMs, 89_000)
      assert.strictEqual(body.queues.scanLimit, 10_000)
      assert.deepInclude(body.leases, { held: 0, expiredUnreaped: 0 })
      assert.property(body.leases.counters, "stale_owner_rejections")
      assert.strictEqual(body.readiness.ok, true)
      assert.strictEqual(body.links.metrics, "/api/metrics")
      assert.strictEqual(body.byok.status, "not_configured")
      assert.isFalse(Number.isNaN(Date.parse(body.generatedAt)))
    }))

  it.effect("/metrics counts requests by route template (never the raw path) and auth failures by reason", () =>
    Effect.gen(function*() {
      const operator = yield* orgWithToken(["operator"])
      const tenant = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token: tenant.token, body: {} })).body.session
      yield* request("POST", `/api/sessions/${session.id}/prompt`, { token: tenant.token, body: { text: "count me" } })
      yield* request("GET", "/api/sessions")
      yield* request("GET", "/api/runtime/status", { token: tenant.token })
      const scraped = yield* request("GET", "/metrics", { token: operator.token })
      assert.strictEqual(scraped.status, 200)
      assert.match(scraped.headers.get("content-type") ?? "", /^text\/plain/)
      const text = scraped.body as string
      assert.match(text, /open_cowork_cloud_http_requests_total\{method="POST",status="202",route="\/api\/sessions\/:id\/prompt",role="web"\} \d+/)
      assert.match(text, /open_cowork_cloud_http_request_duration_ms_count\{[^}]*route="\/api\/sessions\/:id\/prompt"[^}]*\} \d+/)
      assert.match(text, /open_cowork_cloud_prompt_enqueue_duration_ms_count\{role="web"\} [1-9]/)
      assert.match(text, /open_cowork_cloud_session_create_duration_ms_count\{role="web"\} [1-9]/)
      assert.match(text, /open_cowork_cloud_auth_failures_total\{reason="missing_credentials",role="web"\} [1-9]/)
      assert.match(text, /open_cowork_cloud_auth_failures_total\{reason="forbidden_scope",role="web"\} [1-9]/)
      assert.notInclude(text, session.id)
      const api = yield* request("GET", "/api/metrics", { token: operator.token })
      assert.include(api.body as string, "# TYPE open_cowork_cloud_http_requests_total counter")
    }))

  it.effect("projection repair rebuilds a corrupted projection from the log, and is idempotent", () =>
    Effect.gen(function*() {
      const tenant = yield* orgWithToken(["web"])
      const operator = { token: yield* tokenFor(tenant.orgId, ["operator"]) }
      const session = (yield* request("POST", "/api/sessions", { token: tenant.token, body: { title: "repair me" } })).body.session
      const commandId = (yield* request("POST", `/api/sessions/${session.id}/prompt`, { token: tenant.token, body: { text: "hello" } }))
        .body.commandId
      // Attempt 1 answered, was abandoned, attempt 2 answered again: the projection keeps only attempt 2's reply.
      yield* appendEvents(session.id, [
        { type: "session.status", payload: { status: "running" }, commandId, attempt: 1 },
        { type: "assistant.message", payload: { messageId: "msg_a1", text: "lost answer", final: true }, commandId, attempt: 1 }
      ], undefined)
      yield* appendEvents(session.id, [
        { type: "command.retried", payload: { commandId, abandonedAttempt: 1, attempt: 2 }, commandId, attempt: 2 },
        { type: "assistant.message", payload: { messageId: "msg_a2", text: "echo: hello", final: true }, commandId, attempt: 2 },
        { type: "session.idle", payload: { commandId, outcome: "acked" }, commandId, attempt: 2 }
      ], undefined)
      const healthyView = (yield* request("GET", `/api/sessions/${session.id}/view`, { token: tenant.token })).body
      assert.deepStrictEqual(healthyView.messages.map((m: any) => m.text), ["hello", "echo: hello"])
      const healthy = yield* request("GET", `/api/sessions/${session.id}/projection-status`, { token: operator.token })
      assert.deepInclude(healthy.body, { consistent: true, lagEvents: 0, messageRows: 2, expectedMessageRows: 2, status: "idle" })

      const sql = yield* SqlClient.SqlClient
      yield* sql`DELETE FROM cloud_session_projection_messages WHERE session_id = ${session.id} AND role = 'user'`
      yield* sql`UPDATE cloud_session_projection_messages SET text = 'garbled' WHERE session_id = ${session.id}`
      yield* sql`INSERT INTO cloud_session_projection_messages (session_id, message_id, role, text, command_id, attempt, sequence)
        VALUES (${session.id}, 'msg_a1', 'assistant', 'lost answer', ${commandId}, 1, 5)`
      yield* sql`UPDATE cloud_session_projections SET status = 'running', projected_sequence = last_sequence - 3
        WHERE session_id = ${session.id}`

      const broken = yield* request("GET", `/api/sessions/${session.id}/projection-status`, { token: operator.token })
      assert.deepInclude(broken.body, { consistent: false, lagEvents: 3, messageRows: 2, status: "running", expectedStatus: "idle" })

      const repaired = yield* request("POST", `/api/sessions/${session.id}/projection-repair`, { token: operator.token })
      assert.strictEqual(repaired.status, 200)
      assert.strictEqual(repaired.body.changed, true)
      assert.deepInclude(repaired.body.after, { consistent: true, lagEvents: 0, status: "idle", messageRows: 2 })
      const view = (yield* request("GET", `/api/sessions/${session.id}/view`, { token: tenant.token })).body
      assert.deepStrictEqual(view.messages, healthyView.messages)
      assert.strictEqual(view.status, "idle")
      assert.strictEqual(view.projectedSequence, healthyView.projectedSequence)

      const again = yield* request("POST", `/api/sessions/${session.id}/projection-repair`, { token: operator.token })
      assert.strictEqual(again.body.changed, false)
      assert.deepStrictEqual(again.body.after, repaired.body.after)

      // The log still appends after a repair: the sequence allocator never moved back.
      const next = yield* request("POST", `/api/sessions/${session.id}/prompt`, { token: tenant.token, body: { text: "after repair" } })
      assert.strictEqual(next.status, 202)
    }))
})
