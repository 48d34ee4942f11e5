import { WebhookSignature } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"

// Read when the server layer is built: a per-source webhook limit this file can reach.
process.env.OPEN_COWORK_CLOUD_WEBHOOK_RATE_PER_MINUTE = "30"
const { baseUrl, client, layer, orgWithToken, request } = await import("./support/WebTestServer.ts")

const body = (overrides: Record<string, unknown> = {}) => ({
  title: "daily digest",
  instructions: "write the digest",
  agentName: "build",
  triggers: [{ type: "manual", enabled: true }],
  ...overrides
})

const deliver = (workflowId: string, raw: string, headers: Record<string, string>) =>
  Effect.gen(function*() {
    const url = `${yield* baseUrl}/webhooks/workflows/${workflowId}`
    return yield* Effect.promise(async () => {
      const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: raw })
      const text = await response.text()
      return { status: response.status, body: text === "" ? undefined : JSON.parse(text), retryAfter: response.headers.get("retry-after") }
    })
  })

const signed = (secret: string, raw: string, timestamp = String(Math.floor(Date.now() / 1000))) => ({
  [WebhookSignature.TIMESTAMP_HEADER]: timestamp,
  [WebhookSignature.SIGNATURE_HEADER]: WebhookSignature.sign(secret, timestamp, raw)
})

it.layer(layer)("workflows API", (it) => {
  it.effect("create validates triggers, cron expressions and IANA zones with a 400 naming the field", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const cases: ReadonlyArray<[unknown, string]> = [
        [{ triggers: [] }, "triggers"],
        [{ triggers: [{ type: "schedule", enabled: true }] }, "triggers.0.schedule"],
        [{ triggers: [{ type: "schedule", enabled: true, schedule: { type: "cron", expression: "61 * * * *", timezone: "UTC" } }] }, "triggers.0.schedule.expression"],
        [{ triggers: [{ type: "schedule", enabled: true, schedule: { type: "cron", expression: "* * *", timezone: "UTC" } }] }, "triggers.0.schedule.expression"],
        [{ triggers: [{ type: "schedule", enabled: true, schedule: { type: "cron", expression: "0 9 * * *", timezone: "Mars/Olympus" } }] }, "triggers.0.schedule.timezone"],
        [{ triggers: [{ type: "schedule", enabled: true, schedule: { type: "weekly", timezone: "UTC", runAtHour: 9, runAtMinute: 0 } }] }, "triggers.0.schedule.dayOfWeek"],
        [{ triggers: [{ type: "manual", enabled: true }, { type: "schedule", enabled: true, schedule: { type: "daily", timezone: "UTC", runAtHour: 24, runAtMinute: 0 } }] }, "triggers.1.schedule.runAtHour"]
      ]
      for (const [overrides, field] of cases) {
        const response = yield* request("POST", "/api/workflows", { token, body: body(overrides as Record<string, unknown>) })
        assert.strictEqual(response.status, 400, JSON.stringify(overrides))
        assert.strictEqual(response.body.error.details.field, field, JSON.stringify(response.body))
      }
      const missingTitle = yield* request("POST", "/api/workflows", { token, body: { ...body(), title: undefined } })
      assert.strictEqual(missingTitle.status, 400)
      assert.strictEqual(missingTitle.body.error.details.field, "title")
    }))

  it.effect("create, list, get, run (a session with the prompt), pause/resume/archive; another org gets 404", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const other = yield* orgWithToken(["web"])
      const created = yield* request("POST", "/api/workflows", {
        token,
        body: body({
          steps: [{ id: "s1", title: "gather" }],
          triggers: [
            { type: "manual", enabled: true },
            { type: "schedule", enabled: true, schedule: { type: "cron", expression: "0 9 * * 1-5", timezone: "Europe/London" } },
            { type: "schedule", enabled: true, schedule: { type: "weekly", timezone: "America/New_York", runAtHour: 7, runAtMinute: 30, dayOfWeek: 1 } }
          ]
        })
      })
      assert.strictEqual(created.status, 201)
      const workflow = created.body.workflow
      for (const key of ["id", "title", "instructions", "agentName", "status", "triggers", "createdAt", "updatedAt", "nextRunAt", "lastRunAt", "latestRunId", "latestRunStatus", "latestRunSessionId", "webhookUrl"]) {
        assert.property(workflow, key)
      }
      assert.deepInclude(workflow, { status: "active", webhookUrl: null, lastRunAt: null })
      assert.isString(workflow.nextRunAt)
      assert.deepStrictEqual(created.body.webhookSecrets, [])

      const list = yield* request("GET", "/api/workflows?limit=1", { token })
      assert.deepInclude(list.body, { totalEstimate: 1, nextCursor: null })
      assert.strictEqual((yield* request("GET", "/api/workflows?cursor=%25%25", { token })).status, 400)

      const run = yield* request("POST", `/api/workflows/${workflow.id}/run`, { token })
      assert.strictEqual(run.status, 202)
      assert.deepInclude(run.body.run, { workflowId: workflow.id, triggerType: "manual", status: "queued" })
      const view = yield* request("GET", `/api/sessions/${run.body.run.sessionId}/view`, { token })
      assert.strictEqual(view.status, 200)
      assert.include(view.body.messages[0].text, "write the digest")

      const detail = yield* request("GET", `/api/workflows/${workflow.id}`, { token })
      assert.deepInclude(detail.body.workflow, { status: "running", latestRunId: run.body.run.id })
      assert.strictEqual(detail.body.recentRuns.length, 1)
      assert.strictEqual((yield* request("GET", `/api/workflows/${workflow.id}/runs`, { token })).body.runs.length, 1)

      for (const path of ["", "/run", "/pause", "/resume", "/archive", "/runs"]) {
        const method = path === "" || path === "/runs" ? "GET" : "POST"
        assert.strictEqual((yield* request(method, `/api/workflows/${workflow.id}${path}`, { token: other.token })).status, 404, path)
      }
      assert.strictEqual((yield* request("POST", `/api/workflows/${workflow.id}/pause`, { token })).body.workflow.status, "paused")
      assert.strictEqual((yield* request("POST", `/api/workflows/${workflow.id}/resume`, { token })).status, 200)
      assert.strictEqual((yield* request("POST", `/api/workflows/${workflow.id}/archive`, { token })).body.workflow.status, "archived")
      assert.strictEqual((yield* request("POST", `/api/workflows/${workflow.id}/run`, { token })).status, 409)
      assert.strictEqual((yield* request("GET", "/api/workflows", {})).status, 401)
    }))

  it.effect("webhook: signed delivery → 202 and one run; replay, stale, bad signature, oversized refused; rotation", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const created = yield* request("POST", "/api/workflows", { token, body: body({ triggers: [{ id: "hook", type: "webhook", enabled: true }] }) })
      const workflow = created.body.workflow
      const [{ triggerId, secret }] = created.body.webhookSecrets
      assert.strictEqual(triggerId, "hook")
      assert.match(secret, /^whsec_/)
      assert.strictEqual(workflow.webhookUrl, `/webhooks/workflows/${workflow.id}`)
      assert.notInclude(JSON.stringify((yield* request("GET", `/api/workflows/${workflow.id}`, { token })).body), secret)

      const raw = JSON.stringify({ event: "push" })
      const headers = signed(secret, raw)
      const accepted = yield* deliver(workflow.id, raw, headers)
      assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
      assert.deepInclude(accepted.body.run, { triggerType: "webhook", triggerPayload: { event: "push" } })
      assert.strictEqual((yield* deliver(workflow.id, raw, headers)).status, 409, "the same signature twice")

      const concurrent = signed(secret, JSON.stringify({ event: "again" }))
      const statuses = yield* Effect.all(
        Array.from({ length: 4 }, () => Effect.map(deliver(workflow.id, JSON.stringify({ event: "again" }), concurrent), (r) => r.status)),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual([...statuses].sort(), [202, 409, 409, 409])

      const old = String(Math.floor(Date.now() / 1000) - 600)
      assert.strictEqual((yield* deliver(workflow.id, raw, signed(secret, raw, old))).status, 401, "stale timestamp")
      assert.strictEqual((yield* deliver(workflow.id, raw, signed("whsec_wrong", raw))).status, 401, "bad signature")
      assert.strictEqual((yield* deliver(workflow.id, raw, {})).status, 401, "unsigned")
      const big = JSON.stringify({ blob: "x".repeat(70_000) })
      assert.strictEqual((yield* deliver(workflow.id, big, signed(secret, big))).status, 413, "oversized")
      assert.strictEqual((yield* deliver("wf_missing", raw, signed(secret, raw))).status, 404)

      const rotated = yield* request("POST", `/api/workflows/${workflow.id}/triggers/hook/rotate-secret`, { token })
      assert.strictEqual(rotated.status, 200)
      const fresh = JSON.stringify({ event: "rotated" })
      assert.strictEqual((yield* deliver(workflow.id, fresh, signed(secret, fresh))).status, 401, "the old secret no longer signs")
      assert.strictEqual((yield* deliver(workflow.id, fresh, signed(rotated.body.secret, fresh))).status, 202)
      const runs = yield* request("GET", `/api/workflows/${workflow.id}/runs`, { token })
      assert.strictEqual(runs.body.totalEstimate, 3)

      const metrics = yield* request("GET", "/metrics", { token: (yield* orgWithToken(["operator"])).token })
      assert.match(metrics.body, /open_cowork_cloud_webhook_rejections_total\{[^}]*reason="replayed"[^}]*\} 4/)
    }))

  it.effect("webhook: one source over the per-minute limit gets 429 with Retry-After and retryAfterMs", () =>
    Effect.gen(function*() {
      const statuses: Array<number> = []
      let limited: { status: number; body: any; retryAfter: string | null } | undefined
      for (let i = 0; i < 31 && limited === undefined; i++) {
        const response = yield* deliver("wf_unknown", "{}", {})
        statuses.push(response.status)
        if (response.status === 429) limited = response
      }
      assert.isDefined(limited, `no 429 after ${statuses.length} deliveries: ${statuses.join(",")}`)
      assert.isAtLeast(Number(limited!.retryAfter), 1)
      assert.isAtLeast(limited!.body.retryAfterMs, 1_000)
      assert.strictEqual(limited!.body.error.code, "rate_limited")
    }))

  it.effect("the typed client decodes every workflow response; a domain error comes back as itself", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const api = yield* client(token)
      const { workflow, webhookSecrets } = yield* api.workflows.create({
        payload: {
          title: "typed",
          instructions: "through the client",
          agentName: "build",
          triggers: [
            { type: "schedule", enabled: true, schedule: { type: "monthly", timezone: "Asia/Tokyo", runAtHour: 8, runAtMinute: 15, dayOfMonth: 31 } },
            { id: "hook", type: "webhook", enabled: true }
          ],
          overlapPolicy: "buffer_one",
          catchUpMode: "latest"
        }
      })
      assert.deepInclude(workflow, { overlapPolicy: "buffer_one", catchUpMode: "latest", catchUpWindowSeconds: 3_600 })
      assert.deepStrictEqual(webhookSecrets.map((s) => s.triggerId), ["hook"])
      const { run } = yield* api.workflows.run({ params: { id: workflow.id } })
      const detail = yield* api.workflows.get({ params: { id: workflow.id } })
      assert.strictEqual(detail.recentRuns[0]!.id, run.id)
      const page = yield* api.workflows.runs({ params: { id: workflow.id }, query: { limit: 1 } })
      assert.strictEqual(page.runs.length, 1)
      const rotated = yield* api.workflows.rotateSecret({ params: { id: workflow.id, tid: "hook" } })
      assert.match(rotated.secret, /^whsec_/)
      yield* api.workflows.archive({ params: { id: workflow.id } })
      const refused = yield* Effect.flip(api.workflows.run({ params: { id: workflow.id } }))
      assert.strictEqual((refused as { _tag: string })._tag, "Conflict")
      const missing = yield* Effect.flip(api.workflows.get({ params: { id: "wf_missing" } }))
      assert.strictEqual((missing as { _tag: string })._tag, "NotFound")
    }))
})
