import { Logging, Metrics } from "@cowork/observability"
import { PgLeaseStore } from "@cowork/postgres"
import { ScriptedRuntime } from "@cowork/runtime"
import { Tokens } from "@cowork/services"
import * as WebRole from "@cowork/web"
import { WorkerConfig } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { ConfigProvider, Effect, Layer, Redacted, References } from "effect"
import { HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

/**
 * Recognisable fake secrets. Each value is what must never be readable by an operator; the surrounding text is how
 * a careless caller would send it.
 */
const CANARY = {
  token: "occ_CanaryTokenId0001_CanarySecretValue0123456789abcdef",
  tokenSecret: "CanarySecretValue0123456789abcdef",
  providerKey: "sk-proj-CanaryProviderKey0123456789abcd",
  dbPassword: "CanaryDbPassw0rd",
  signature: "CanarySignature0123456789abcdef",
  email: "canary.person@example.org"
}
const DB_URL = `postgres://cowork:${CANARY.dbPassword}@db.internal:5432/cowork`
const SIGNED_URL = `https://bucket.s3.amazonaws.com/export.tar?X-Amz-Expires=300&X-Amz-Signature=${CANARY.signature}`
const EVERYTHING = `token ${CANARY.token} key ${CANARY.providerKey} db ${DB_URL} url ${SIGNED_URL} mail ${CANARY.email}`
const NEEDLES = [CANARY.tokenSecret, "CanaryTokenId0001", CANARY.providerKey, "CanaryProviderKey", CANARY.dbPassword, CANARY.signature, CANARY.email]

const logLines: Array<string> = []

/** Web and worker in one process (as `cowork up`), every log line of every level captured. */
const Stack = Layer.mergeAll(
  WebRole.layerServe.pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))),
  WorkerRole.layerNoDeps.pipe(Layer.provide([WorkerConfig.layerWith({ pollIntervalMs: 50 }), ScriptedRuntime.layer]))
).pipe(
  Layer.provideMerge(Layer.merge(WebRole.layerPgServices, PgLeaseStore.layer)),
  Layer.provideMerge(Metrics.layerTest("all")),
  Layer.provideMerge(TestDatabase.layer()),
  Layer.provide(Logging.layerTo("all", (line) => logLines.push(line))),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "All")),
  // The web role's default object store goes under the OS temp dir, never the repo's .cowork.
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-canary-"))
  })))
)

interface Captured {
  readonly status: number
  readonly text: string
}

it.layer(Stack, { timeout: 60_000, excludeTestServices: true })("redaction canary", (it) => {
  it.effect("secrets planted through real requests never reach logs, diagnostics, error bodies or /metrics", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const base = `http://127.0.0.1:${(server.address as { port: number }).port}`
      const tokens = yield* Tokens
      const { orgId } = yield* tokens.createOrg("canary")
      const tenant = Redacted.value((yield* tokens.issue({ orgId, name: "tenant", scopes: ["web"] })).token)
      const operator = Redacted.value((yield* tokens.issue({ orgId, name: "operator", scopes: ["operator"] })).token)
      const errorBodies: Array<string> = []

      const send = (method: string, path: string, options: { token?: string; body?: string; headers?: Record<string, string> } = {}) =>
        Effect.promise(async (): Promise<Captured> => {
          const response = await fetch(`${base}${path}`, {
            method,
            headers: {
              ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
              ...(options.body === undefined ? {} : { "content-type": "application/json" }),
              ...options.headers
            },
            body: options.body
          })
          const text = await response.text()
          if (response.status >= 400) errorBodies.push(text)
          return { status: response.status, text }
        })
      const json = (value: unknown) => JSON.stringify(value)
      const plantedHeaders = {
        "x-request-id": CANARY.providerKey,
        "x-forwarded-for": CANARY.email,
        cookie: `session=${CANARY.tokenSecret}`,
        "x-debug-database": DB_URL
      }

      // Tenant content: a title and prompts full of secrets, plus a prompt whose run fails.
      const created = yield* send("POST", "/api/sessions", {
        token: tenant,
        body: json({ title: `Incident ${CANARY.email} ${CANARY.providerKey}` }),
        headers: plantedHeaders
      })
      assert.strictEqual(created.status, 201)
      const sessionId = JSON.parse(created.text).session.id as string
      const prompt = yield* send("POST", `/api/sessions/${sessionId}/prompt`, {
        token: tenant,
        body: json({ text: EVERYTHING, idempotencyKey: CANARY.providerKey }),
        headers: plantedHeaders
      })
      assert.strictEqual(prompt.status, 202)
      const failing = yield* send("POST", `/api/sessions/${sessionId}/prompt`, {
        token: tenant,
        body: json({ text: `[[fail]] ${EVERYTHING}` })
      })
      assert.strictEqual(failing.status, 202)

      // Bad requests that echo what they were sent.
      const bad: Array<Captured> = [
        yield* send("POST", "/api/sessions", { token: tenant, body: json({ title: EVERYTHING.repeat(4) }) }),
        yield* send("POST", "/api/sessions", { token: tenant, body: `{"title": "${CANARY.providerKey}` }),
        yield* send("POST", "/api/sessions", { token: tenant, body: json({ title: 7, profileName: `${CANARY.email}` }) }),
        yield* send("GET", `/api/sessions/${encodeURIComponent(CANARY.providerKey)}/view`, { token: tenant }),
        yield* send("GET", `/api/sessions/${sessionId}/events?after=${encodeURIComponent(CANARY.signature)}`, { token: tenant }),
        yield* send("GET", `/api/sessions?cursor=${encodeURIComponent(CANARY.email)}`, { token: tenant }),
        yield* send("POST", `/api/sessions/${sessionId}/prompt`, { token: tenant, body: json({ text: "" }) }),
        yield* send("GET", `/no/such/${encodeURIComponent(SIGNED_URL)}`, { headers: plantedHeaders }),
        // Failed authentication with a planted token, and a tenant token on an operator route.
        yield* send("GET", "/api/sessions", { token: CANARY.token, headers: plantedHeaders }),
        yield* send("GET", "/api/sessions", { headers: { authorization: `Basic ${CANARY.tokenSecret}` } }),
        yield* send("GET", "/api/diagnostics", { token: tenant })
      ]
      for (const response of bad) assert.isAtLeast(response.status, 400)
      assert.isBelow(Math.max(...bad.map((r) => r.status)), 500, "bad input is never a 500")

      // Let the worker run both prompts, so its logs (and the runtime failure) are part of the capture.
      const sql = yield* SqlClient.SqlClient
      const deadline = Date.now() + 20_000
      let open = 2
      while (Date.now() < deadline && open > 0) {
        open = Number((yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_session_commands
          WHERE session_id = ${sessionId} AND status NOT IN ('acked', 'failed')`)[0]!.n)
        if (open > 0) yield* Effect.sleep(25)
      }
      assert.strictEqual(open, 0, "both prompts finished")

      const diagnostics = yield* send("GET", "/api/diagnostics", { token: operator, headers: plantedHeaders })
      assert.strictEqual(diagnostics.status, 200)
      const metrics = yield* send("GET", "/metrics", { token: operator })
      assert.strictEqual(metrics.status, 200)

      // The plants really went through: the tenant reads its own content back verbatim.
      const view = yield* send("GET", `/api/sessions/${sessionId}/view`, { token: tenant })
      assert.include(view.text, CANARY.providerKey)
      assert.include(view.text, CANARY.dbPassword)
      assert.isAtLeast(logLines.length, 20)
      assert.isTrue(logLines.some((line) => line.includes(`"route":"/api/sessions/:id/prompt"`)), "request lines were captured")
      assert.isTrue(logLines.some((line) => line.includes("command completed")), "worker lines were captured")
      assert.isAtLeast(errorBodies.length, bad.length)

      const surfaces: Record<string, string> = {
        logs: logLines.join("\n"),
        diagnostics: diagnostics.text,
        errorBodies: errorBodies.join("\n"),
        metrics: metrics.text
      }
      const hits = Object.entries(surfaces).flatMap(([surface, text]) =>
        NEEDLES.filter((needle) => text.includes(needle)).map((needle) => `${surface}: ${needle}`)
      )
      assert.deepStrictEqual(hits, [])
    }))
})
