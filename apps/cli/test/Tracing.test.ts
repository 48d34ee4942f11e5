import { Metrics, Tracing } from "@cowork/observability"
import { PgLeaseStore } from "@cowork/postgres"
import { ScriptedRuntime } from "@cowork/runtime"
import { Tokens } from "@cowork/services"
import * as WebRole from "@cowork/web"
import { WorkerConfig } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Redacted, References } from "effect"
import { HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const exporter = new InMemorySpanExporter()

/** Web and worker in one process, as `cowork up` runs them, exporting spans to memory. */
const Stack = Layer.mergeAll(
  WebRole.layerServe.pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))),
  WorkerRole.layerNoDeps.pipe(Layer.provide([WorkerConfig.layerWith({ pollIntervalMs: 50 }), ScriptedRuntime.layer]))
).pipe(
  Layer.provideMerge(Layer.merge(WebRole.layerPgServices, PgLeaseStore.layer)),
  Layer.provideMerge(Metrics.layerTest("all")),
  Layer.provideMerge(TestDatabase.layer()),
  Layer.provide(Tracing.layerProcessor("all", new SimpleSpanProcessor(exporter))),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
)

const SERVER = 1
const CONSUMER = 4

it.layer(Stack, { timeout: 60_000, excludeTestServices: true })("traces", (it) => {
  it.effect("a prompt's HTTP request span, and the worker's command span from claim to ack linked to it", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const address = server.address as { port: number }
      const base = `http://127.0.0.1:${address.port}`
      const tokens = yield* Tokens
      const { orgId } = yield* tokens.createOrg("traced")
      const token = Redacted.value((yield* tokens.issue({ orgId, name: "t", scopes: ["web"] })).token)
      const call = (method: string, path: string, body?: unknown) =>
        Effect.promise(() =>
          fetch(`${base}${path}`, {
            method,
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body)
          }).then((r) => r.json() as Promise<any>)
        )
      const { session } = yield* call("POST", "/api/sessions", {})
      const { commandId } = yield* call("POST", `/api/sessions/${session.id}/prompt`, { text: "trace me" })

      const sql = yield* SqlClient.SqlClient
      const deadline = Date.now() + 20_000
      let status = ""
      while (Date.now() < deadline && status !== "acked") {
        status = (yield* sql<{ status: string }>`SELECT status FROM cloud_session_commands WHERE id = ${commandId}`)[0]!.status
        if (status !== "acked") yield* Effect.sleep(25)
      }
      assert.strictEqual(status, "acked")
      const stored = (yield* sql<{ trace_parent: string | null }>`SELECT trace_parent FROM cloud_session_commands WHERE id = ${commandId}`)[0]!
      assert.match(stored.trace_parent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)

      // The ack commits before the command span ends: wait for the span too, under the same deadline.
      while (Date.now() < deadline && !exporter.getFinishedSpans().some((span) => span.name === "worker.command")) {
        yield* Effect.sleep(25)
      }
      const spans = exporter.getFinishedSpans()
      const [, traceId, spanId] = stored.trace_parent!.split("-")
      const promptRequest = spans.find((span) => span.spanContext().spanId === spanId)
      assert.isDefined(promptRequest, "the stored traceparent names a span of the prompt request")
      assert.strictEqual(promptRequest!.kind, SERVER)
      assert.strictEqual(promptRequest!.attributes["http.request.method"], "POST")
      assert.strictEqual(promptRequest!.attributes["http.route"], "/api/sessions/:id/prompt")

      const command: ReadableSpan | undefined = spans.find((span) => span.name === "worker.command")
      assert.isDefined(command, "one span per command run")
      assert.strictEqual(command!.kind, CONSUMER)
      assert.notStrictEqual(command!.spanContext().traceId, traceId, "the run is its own trace, linked rather than parented")
      assert.deepStrictEqual(
        command!.links.map((link) => [link.context.traceId, link.context.spanId, link.attributes?.["link.type"]]),
        [[traceId, spanId, "enqueued-by"]]
      )
      const children = spans.filter((span) => span.parentSpanContext?.spanId === command!.spanContext().spanId)
      assert.include(children.map((span) => span.name), "Worker.runPrompt")
      assert.include(
        spans.filter((span) => span.spanContext().traceId === command!.spanContext().traceId).map((span) => span.name),
        "EventLog.close",
        "the acking append (the closing one: the mailbox is empty after this prompt) is inside the command's trace"
      )
    }))
})
