import { authorizationTable } from "@cowork/domain"
import { WebhookSignature } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { baseUrl, layer, orgWithToken, platformToken, request, tokenFor } from "./support/WebTestServer.ts"

/**
 * The HTTP contract the team's API document states (the routes, fields and statuses existing operator runbooks, smoke
 * scripts and clients use), checked against the web role's routes: every documented route is served with the audience
 * the document puts it under, and each documented case answers the documented status and fields. The document's
 * route lines are transcribed below, one route per method (its `{a,b}` groups expanded).
 */

type Section = "health" | "operator" | "tenant" | "public"

const documented: ReadonlyArray<readonly [Section, string, string]> = [
  ["health", "GET", "/healthz"],
  ["health", "GET", "/livez"],
  ["health", "GET", "/readyz"],
  ["operator", "GET", "/api/runtime/status"],
  ["operator", "GET", "/api/workers/heartbeats"],
  ["operator", "GET", "/api/diagnostics"],
  ["operator", "GET", "/api/metrics"],
  ["operator", "GET", "/metrics"],
  ["operator", "GET", "/api/sessions/:id/projection-status"],
  ["operator", "POST", "/api/sessions/:id/projection-repair"],
  ["operator", "GET", "/api/admin/worker-pools"],
  ["operator", "POST", "/api/admin/worker-pools"],
  ["operator", "PATCH", "/api/admin/worker-pools/:id"],
  ["operator", "GET", "/api/admin/workers"],
  ["operator", "POST", "/api/admin/workers"],
  ...["activate", "pause", "drain", "resume", "retire", "revoke"].map((action) =>
    ["operator", "POST", `/api/admin/workers/:id/${action}`] as const
  ),
  ["operator", "POST", "/api/admin/workers/:id/credentials"],
  ["operator", "POST", "/api/admin/workers/:id/credentials/:cid/rotate"],
  ["operator", "POST", "/api/admin/workers/:id/credentials/:cid/revoke"],
  ["operator", "POST", "/api/sessions/:id/abort"],
  ["operator", "POST", "/api/sessions/:id/retry"],
  ["operator", "POST", "/api/admin/commands/:id/dead-letter"],
  ["operator", "GET", "/api/admin/policy"],
  ["operator", "GET", "/api/admin/audit"],
  ["public", "GET", "/api/config"],
  ["tenant", "GET", "/api/workspace"],
  ["tenant", "GET", "/api/sessions"],
  ["tenant", "POST", "/api/sessions"],
  ["tenant", "GET", "/api/sessions/:id"],
  ["tenant", "GET", "/api/sessions/:id/view"],
  ["tenant", "POST", "/api/sessions/:id/prompt"],
  ["tenant", "POST", "/api/sessions/:id/permission-respond"],
  ["tenant", "POST", "/api/sessions/:id/question-reply"],
  ["tenant", "POST", "/api/sessions/:id/question-reject"],
  ["tenant", "GET", "/api/sessions/:id/events"],
  ["tenant", "GET", "/api/events"],
  ["tenant", "GET", "/api/threads"],
  ["tenant", "GET", "/api/threads/tags"],
  ["tenant", "GET", "/api/threads/smart-filters"],
  ["tenant", "GET", "/api/sessions/:id/artifacts"],
  ["tenant", "POST", "/api/sessions/:id/artifacts"],
  ["tenant", "GET", "/api/sessions/:id/artifacts/:aid"],
  ["tenant", "GET", "/api/artifacts"],
  ["tenant", "GET", "/api/workflows"],
  ["tenant", "POST", "/api/workflows"],
  ["tenant", "GET", "/api/workflows/:id"],
  ...["run", "pause", "resume", "archive"].map((action) => ["tenant", "POST", `/api/workflows/:id/${action}`] as const),
  ["public", "POST", "/webhooks/workflows/:id"],
  ["tenant", "GET", "/api/byok"],
  ["tenant", "POST", "/api/byok/:provider"],
  ["tenant", "DELETE", "/api/byok/:provider"],
  ["tenant", "POST", "/api/byok/:provider/validate"],
  ["tenant", "GET", "/api/usage/summary"],
  ["tenant", "GET", "/api/usage/events"],
  ["tenant", "GET", "/api/api-tokens"],
  ["tenant", "POST", "/api/api-tokens"],
  ["tenant", "DELETE", "/api/api-tokens/:id"],
  ["public", "GET", "/auth/login"],
  ["public", "GET", "/auth/callback"],
  ["public", "POST", "/auth/logout"],
  ["tenant", "GET", "/api/channels/deliveries"],
  ["tenant", "POST", "/api/channels/deliveries/:id/retry"],
  ["tenant", "POST", "/api/channels/deliveries/:id/dead-letter"]
]

const served = new Map(authorizationTable().map((row) => [`${row.method} ${row.path}`, row]))

it("every documented route is served, under the audience the document puts it", () => {
  const missing: Array<string> = []
  const wrongAudience: Array<string> = []
  for (const [section, method, path] of documented) {
    const key = `${method} ${path}`
    const row = served.get(key)
    if (row === undefined) {
      missing.push(key)
      continue
    }
    const ok = section === "health" || section === "public"
      ? row.audience === "none"
      : section === "operator"
      ? row.scopes.includes("operator")
      : row.scopes.includes("web") || row.scopes.includes("admin")
    if (!ok) wrongAudience.push(`${key} (documented ${section}; served for ${row.audience} [${row.scopes.join(",")}])`)
  }
  assert.deepStrictEqual(missing, [], "documented routes the web role does not serve")
  assert.deepStrictEqual(wrongAudience, [])
})

const errorShape = (body: any, code: string) => {
  assert.strictEqual(body?.error?.code, code, JSON.stringify(body))
  assert.isString(body.error.message)
}

it.layer(layer, { excludeTestServices: true })("the documented statuses and fields", (it) => {
  it.effect("health, request ids, the error shape and operator reads", () =>
    Effect.gen(function*() {
      for (const path of ["/healthz", "/livez"]) {
        const health = yield* request("GET", path)
        assert.strictEqual(health.status, 200, path)
        assert.deepInclude(health.body, { ok: true })
        assert.isString(health.body.role)
        assert.isString(health.body.profileName)
      }
      const tenant = yield* orgWithToken(["web", "admin"])
      const operator = yield* tokenFor(tenant.orgId, ["operator"])
      const ready = yield* request("GET", "/readyz")
      assert.strictEqual(ready.status, 200, JSON.stringify(ready.body))
      assert.includeMembers(
        ready.body.checks.map((check: { name: string }) => check.name),
        ["control_plane", "object_store", "secret_adapter", "auth_config", "role_dependencies"]
      )

      const echoed = yield* request("GET", "/healthz", { headers: { "x-request-id": "req-contract-1" } })
      assert.strictEqual(echoed.headers.get("x-request-id"), "req-contract-1")
      assert.isNotEmpty((yield* request("GET", "/healthz")).headers.get("x-request-id"))

      errorShape((yield* request("GET", "/api/sessions")).body, "unauthorized")
      assert.strictEqual((yield* request("GET", "/api/sessions")).status, 401)
      const forbidden = yield* request("GET", "/api/runtime/status", { token: tenant.token })
      assert.strictEqual(forbidden.status, 403)
      errorShape(forbidden.body, "forbidden")
      const missing = yield* request("GET", "/api/sessions/ses_nope", { token: tenant.token })
      assert.strictEqual(missing.status, 404)
      errorShape(missing.body, "not_found")

      const status = yield* request("GET", "/api/runtime/status", { token: operator })
      assert.strictEqual(status.status, 200)
      assert.containsAllKeys(status.body, ["role", "profileName", "canExecute", "commandProcessing", "checkpoints", "heartbeats"])
      assert.containsAllKeys(status.body.checkpoints, ["enabled"])
      assert.containsAllKeys(status.body.heartbeats, ["workers", "schedulers", "freshWorkers", "freshSchedulers"])
      const heartbeats = yield* request("GET", "/api/workers/heartbeats", { token: operator })
      assert.strictEqual(heartbeats.status, 200)
      assert.isArray(heartbeats.body.heartbeats)
      const diagnostics = yield* request("GET", "/api/diagnostics", { token: operator })
      assert.strictEqual(diagnostics.status, 200)
      assert.containsAllKeys(diagnostics.body, ["generatedAt", "redaction", "runtime", "heartbeats", "queues", "byok", "gateway", "links"])
      assert.strictEqual(diagnostics.body.redaction, "secrets-redacted")
      for (const path of ["/api/metrics", "/metrics"]) {
        const metrics = yield* request("GET", path, { token: operator })
        assert.strictEqual(metrics.status, 200, path)
        assert.include(metrics.body, "open_cowork_cloud_http_requests_total")
      }
      // Documented under the operator token: an org's operator token reads its org's policy and audit log.
      for (const path of ["/api/admin/policy", "/api/admin/audit"]) {
        assert.strictEqual((yield* request("GET", path, { token: operator })).status, 200, `${path} with an operator token`)
        assert.strictEqual((yield* request("GET", path, { token: tenant.token })).status, 200, `${path} with an admin token`)
      }
      const abortable = (yield* request("POST", "/api/sessions", { token: tenant.token, body: {} })).body.session.id as string
      assert.strictEqual((yield* request("POST", `/api/sessions/${abortable}/abort`, { token: operator })).status, 202, "abort with an operator token")

      // Those routes stay tenant routes for a browser session (operator routes never accept one).
      const url = yield* baseUrl
      const login = yield* request("POST", "/auth/token-login", { body: { token: tenant.token }, headers: { origin: url } })
      assert.strictEqual(login.status, 200, JSON.stringify(login.body))
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!
      const browser = { cookie, origin: url, "x-csrf-token": login.body.csrfToken as string }
      assert.strictEqual((yield* request("GET", "/api/admin/audit", { headers: browser })).status, 200, "audit from a browser session")
      assert.strictEqual((yield* request("GET", "/api/admin/policy", { headers: browser })).status, 200, "policy from a browser session")
      const browserSession = (yield* request("POST", "/api/sessions", { headers: browser, body: {} })).body.session.id as string
      assert.strictEqual((yield* request("POST", `/api/sessions/${browserSession}/abort`, { headers: browser })).status, 202, "abort from a browser session")
      assert.strictEqual((yield* request("GET", "/api/runtime/status", { headers: browser })).status, 403, "an operator route refuses a browser session")
    }))

  it.effect("sessions, prompts, idempotency, SSE, threads, artifacts", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web", "admin"])
      const created = yield* request("POST", "/api/sessions", {
        token,
        body: { title: "contract", profileName: "default", projectSource: { kind: "git", url: "https://example.com/r.git" } }
      })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      const session = created.body.session.id as string
      const list = yield* request("GET", "/api/sessions?limit=1&status=idle&profileName=default&q=contract", { token })
      assert.strictEqual(list.status, 200)
      assert.containsAllKeys(list.body, ["sessions", "nextCursor", "totalEstimate"])
      assert.strictEqual((yield* request("GET", `/api/sessions/${session}`, { token })).status, 200)
      assert.strictEqual((yield* request("GET", `/api/sessions/${session}/view`, { token })).status, 200)

      const prompt = (body: unknown) => request("POST", `/api/sessions/${session}/prompt`, { token, body })
      const first = yield* prompt({ text: "hello", agent: "build", idempotencyKey: "contract-1" })
      assert.strictEqual(first.status, 202, JSON.stringify(first.body))
      assert.isString(first.body.commandId)
      const again = yield* prompt({ text: "hello", agent: "build", idempotencyKey: "contract-1" })
      assert.strictEqual(again.status, 202)
      assert.strictEqual(again.body.commandId, first.body.commandId)
      const conflicting = yield* prompt({ text: "other", idempotencyKey: "contract-1" })
      assert.strictEqual(conflicting.status, 409)
      errorShape(conflicting.body, "conflict")
      const bad = yield* prompt({})
      assert.strictEqual(bad.status, 400)
      errorShape(bad.body, "bad_request")
      assert.include(JSON.stringify(bad.body.error), "text", "a 400 names the field")

      // SSE: a stream, and a cursor ahead of the log is a 409.
      const url = yield* baseUrl
      const stream = yield* Effect.promise(async () => {
        const controller = new AbortController()
        const response = await fetch(`${url}/api/sessions/${session}/events`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
        controller.abort()
        return { status: response.status, type: response.headers.get("content-type") ?? "" }
      })
      assert.strictEqual(stream.status, 200)
      assert.include(stream.type, "text/event-stream")
      const ahead = yield* request("GET", `/api/sessions/${session}/events?after=1000000`, { token })
      assert.strictEqual(ahead.status, 409)

      for (const path of ["/api/threads?limit=5", "/api/threads/tags", "/api/threads/smart-filters"]) {
        assert.strictEqual((yield* request("GET", path, { token })).status, 200, path)
      }
      assert.containsAllKeys((yield* request("GET", "/api/threads?limit=5", { token })).body, ["threads", "nextCursor", "totalEstimate"])

      const uploads = [
        yield* request("POST", `/api/sessions/${session}/artifacts?name=notes.md`, { token, rawBody: "# notes", headers: { "content-type": "text/markdown" } }),
        yield* request("POST", `/api/sessions/${session}/artifacts`, { token, body: { filename: "hello.txt", contentType: "text/plain", dataBase64: "aGVsbG8=" } })
      ]
      const form = new FormData()
      form.append("file", new Blob(["%PDF-1.4"], { type: "application/pdf" }), "report.pdf")
      uploads.push(yield* Effect.promise(async () => {
        const response = await fetch(`${url}/api/sessions/${session}/artifacts`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form })
        return { status: response.status, headers: response.headers, body: await response.json() }
      }))
      for (const upload of uploads) {
        assert.strictEqual(upload.status, 201, JSON.stringify(upload.body))
        assert.isString(upload.body.artifact.id)
      }
      const artifact = uploads[0]!.body.artifact.id as string
      assert.strictEqual((yield* request("GET", `/api/sessions/${session}/artifacts`, { token })).status, 200)
      const download = yield* request("GET", `/api/sessions/${session}/artifacts/${artifact}`, { token })
      assert.strictEqual(download.status, 200)
      assert.strictEqual(download.body, "# notes")
      assert.strictEqual((yield* request("GET", "/api/artifacts", { token })).status, 200)
    }))

  it.effect("workflows and their signed webhook, BYOK metadata, usage, API tokens, deliveries", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web", "admin"])
      const created = yield* request("POST", "/api/workflows", {
        token,
        body: { title: "contract", instructions: "hi", agentName: "build", triggers: [{ type: "manual", enabled: true }, { type: "webhook", enabled: true }] }
      })
      assert.isBelow(created.status, 300, JSON.stringify(created.body))
      const workflow = created.body.workflow.id as string
      const secret = created.body.webhookSecrets[0].secret as string
      assert.strictEqual((yield* request("GET", "/api/workflows", { token })).status, 200)
      assert.strictEqual((yield* request("GET", `/api/workflows/${workflow}`, { token })).status, 200)
      const run = yield* request("POST", `/api/workflows/${workflow}/run`, { token, body: {} })
      assert.strictEqual(run.status, 202, JSON.stringify(run.body))

      const rawBody = JSON.stringify({ event: "deploy" })
      const timestamp = String(Math.floor(Date.now() / 1000))
      const signed = {
        "content-type": "application/json",
        "x-open-cowork-webhook-timestamp": timestamp,
        "x-open-cowork-webhook-signature": WebhookSignature.sign(secret, timestamp, rawBody)
      }
      assert.strictEqual((yield* request("POST", `/webhooks/workflows/${workflow}`, { rawBody, headers: signed })).status, 202)
      assert.strictEqual((yield* request("POST", `/webhooks/workflows/${workflow}`, { rawBody, headers: signed })).status, 409, "each signature once")
      assert.strictEqual((yield* request("POST", `/webhooks/workflows/${workflow}`, { rawBody, headers: { "content-type": "application/json" } })).status, 401)
      for (const action of ["pause", "resume", "archive"]) {
        const response = yield* request("POST", `/api/workflows/${workflow}/${action}`, { token, body: {} })
        assert.isBelow(response.status, 300, `${action}: ${response.status} ${JSON.stringify(response.body)}`)
      }

      const stored = yield* request("POST", "/api/byok/openai", { token, body: { apiKey: "sk-contract-0123456789abcdef" } })
      assert.isBelow(stored.status, 300, JSON.stringify(stored.body))
      const keys = yield* request("GET", "/api/byok", { token })
      assert.strictEqual(keys.status, 200)
      assert.notInclude(JSON.stringify(keys.body), "sk-contract-0123456789abcdef")
      assert.containsAllKeys(keys.body.keys[0], ["provider", "last4", "fingerprint", "status", "health", "updatedAt"])
      assert.isBelow((yield* request("DELETE", "/api/byok/openai", { token })).status, 300)

      assert.strictEqual((yield* request("GET", "/api/usage/summary", { token })).status, 200)
      assert.strictEqual((yield* request("GET", "/api/usage/events", { token })).status, 200)

      const issued = yield* request("POST", "/api/api-tokens", { token, body: { name: "contract", scopes: ["web"] } })
      assert.strictEqual(issued.status, 201, JSON.stringify(issued.body))
      const listed = yield* request("GET", "/api/api-tokens", { token })
      assert.strictEqual(listed.status, 200)
      assert.notInclude(JSON.stringify(listed.body), issued.body.secret, "plaintext shown once, on create")
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: issued.body.secret })).status, 200)
      assert.strictEqual((yield* request("DELETE", `/api/api-tokens/${issued.body.token.id}`, { token })).status, 200)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: issued.body.secret })).status, 401)

      const deliveries = yield* request("GET", "/api/channels/deliveries?status=pending&limit=5", { token })
      assert.strictEqual(deliveries.status, 200)
      assert.isArray(deliveries.body.deliveries)
      for (const action of ["retry", "dead-letter"]) {
        assert.strictEqual((yield* request("POST", `/api/channels/deliveries/cdl_nope/${action}`, { token, body: {} })).status, 404, action)
      }
    }))

  it.effect("queue controls: dead-letter a pending command, retry the session's failed prompt (operator tokens, own org)", () =>
    Effect.gen(function*() {
      const tenant = yield* orgWithToken(["web", "admin"])
      const operator = yield* tokenFor(tenant.orgId, ["operator"])
      const webOnly = yield* tokenFor(tenant.orgId, ["web"])
      const stranger = yield* tokenFor((yield* orgWithToken(["admin"])).orgId, ["operator"])
      const session = (yield* request("POST", "/api/sessions", { token: tenant.token, body: {} })).body.session.id as string
      const stuck = (yield* request("POST", `/api/sessions/${session}/prompt`, { token: tenant.token, body: { text: "stuck", agent: "plan" } })).body.commandId as string
      const deadLetter = (token: string | undefined, body: unknown = {}) =>
        request("POST", `/api/admin/commands/${stuck}/dead-letter`, { token, body })

      assert.strictEqual((yield* deadLetter(undefined)).status, 401)
      assert.strictEqual((yield* deadLetter(webOnly)).status, 403)
      assert.strictEqual((yield* deadLetter(stranger)).status, 404, "another org's command")
      const tooLong = yield* deadLetter(operator, { reason: "x".repeat(501) })
      assert.strictEqual(tooLong.status, 400)
      assert.include(JSON.stringify(tooLong.body), "reason")
      const dead = yield* deadLetter(operator, { reason: "poisoned the queue" })
      assert.strictEqual(dead.status, 200, JSON.stringify(dead.body))
      assert.deepStrictEqual(dead.body.command, { id: stuck, sessionId: session, kind: "prompt", status: "dead" })
      const again = yield* deadLetter(operator)
      assert.strictEqual(again.status, 409)
      errorShape(again.body, "conflict")
      assert.strictEqual(again.body.error.details.status, "dead")

      const retry = (token: string) => request("POST", `/api/sessions/${session}/retry`, { token })
      assert.strictEqual((yield* retry(stranger)).status, 404, "another org's session")
      const retried = yield* retry(operator)
      assert.strictEqual(retried.status, 202, JSON.stringify(retried.body))
      assert.strictEqual(retried.body.retriedCommandId, stuck)
      const view = (yield* request("GET", `/api/sessions/${session}/view`, { token: tenant.token })).body
      assert.deepStrictEqual(view.messages.map((m: { text: string }) => m.text), ["stuck", "stuck"], "the same text queued again")
      const nothing = yield* retry(operator)
      assert.strictEqual(nothing.status, 409, "the latest prompt (the retry) has not failed")

      const platform = yield* platformToken
      const pending = (yield* request("POST", `/api/sessions/${session}/prompt`, { token: tenant.token, body: { text: "later" } })).body.commandId as string
      const byPlatform = yield* request("POST", `/api/admin/commands/${pending}/dead-letter`, { token: platform, body: {} })
      assert.strictEqual(byPlatform.status, 200, "a platform operator reaches every org")

      const audit = (yield* request("GET", "/api/admin/audit?limit=50", { token: tenant.token })).body.events as Array<{ action: string; target: string }>
      assert.deepStrictEqual(
        audit.filter((e) => e.action === "command.dead_lettered" || e.action === "session.retried").map((e) => `${e.action} ${e.target}`).sort(),
        [`command.dead_lettered command:${pending}`, `command.dead_lettered command:${stuck}`, `session.retried session:${session}`].sort()
      )
    }))
})
