import * as Http from "node:http"
import { Tracing, tracesUrl } from "@cowork/observability"
import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { ConfigProvider, Effect, Layer } from "effect"

describe("Tracing", () => {
  it.effect("exports Effect spans, with their parent and attributes, through the OpenTelemetry SDK", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      yield* Effect.gen(function*() {
        yield* Effect.void.pipe(
          Effect.withSpan("LeaseStore.claim", { attributes: { "cowork.epoch": 7 } }),
          Effect.withSpan("worker.command")
        )
        // Read before the layer closes: shutting the provider down clears the in-memory exporter.
        const spans = exporter.getFinishedSpans()
        const claim = spans.find((span) => span.name === "LeaseStore.claim")
        const command = spans.find((span) => span.name === "worker.command")
        assert.isDefined(claim)
        assert.isDefined(command)
        assert.strictEqual(claim!.attributes["cowork.epoch"], 7)
        assert.strictEqual(claim!.spanContext().traceId, command!.spanContext().traceId)
        assert.strictEqual(claim!.parentSpanContext?.spanId, command!.spanContext().spanId)
        assert.strictEqual(command!.resource.attributes["service.name"], "open-cowork-cloud-worker")
      }).pipe(Effect.provide(Tracing.layerProcessor("worker", new SimpleSpanProcessor(exporter))))
    }))

  it.effect("installs nothing when OPEN_COWORK_OTLP_ENDPOINT is unset", () =>
    Effect.gen(function*() {
      const span = yield* Effect.currentSpan.pipe(Effect.withSpan("plain"))
      assert.notInclude(span.constructor.name.toLowerCase(), "otel")
    }).pipe(Effect.provide(Tracing.layer("web").pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))))))

  it("accepts a collector base URL or the full traces URL", () => {
    assert.strictEqual(tracesUrl("http://collector:4318"), "http://collector:4318/v1/traces")
    assert.strictEqual(tracesUrl("http://collector:4318/v1/traces/"), "http://collector:4318/v1/traces")
  })
})

describe("Tracing.layer with OPEN_COWORK_OTLP_ENDPOINT", () => {
  it.live("posts finished spans to the collector's /v1/traces", () =>
    Effect.gen(function*() {
      const received: Array<{ url: string; body: string }> = []
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<Http.Server>((resolve) => {
            const server = Http.createServer((request, response) => {
              const chunks: Array<Buffer> = []
              request.on("data", (chunk: Buffer) => chunks.push(chunk))
              request.on("end", () => {
                received.push({ url: request.url ?? "", body: Buffer.concat(chunks).toString("utf8") })
                response.writeHead(200, { "content-type": "application/json" }).end("{}")
              })
            })
            server.listen(0, "127.0.0.1", () => resolve(server))
          })
        ),
        (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
      )
      const port = (server.address() as { port: number }).port
      const env = ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_OTLP_ENDPOINT: `http://127.0.0.1:${port}` }))
      yield* Effect.void.pipe(
        Effect.withSpan("http.request GET /api/runtime/status"),
        Effect.provide(Tracing.layer("web").pipe(Layer.provide(env)))
      )
      assert.strictEqual(received.length, 1, "the span is flushed when the tracing layer shuts down")
      assert.strictEqual(received[0]!.url, "/v1/traces")
      assert.include(received[0]!.body, "http.request GET /api/runtime/status")
      assert.include(received[0]!.body, "open-cowork-cloud-web")
    }).pipe(Effect.scoped))
})
