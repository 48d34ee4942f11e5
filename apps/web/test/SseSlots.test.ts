import { Metrics } from "@cowork/observability"
import { EventLog } from "@cowork/services"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, References } from "effect"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import * as WebRole from "../src/WebRole.ts"
import { connect } from "../../../test/support/SseClient.ts"
import { baseUrl, orgWithToken, request } from "./support/WebTestServer.ts"
import { within } from "../../../test/support/Eventually.ts"

/** Sessions whose log reads fail: their streams end in an error after the slot was taken. */
const failingReads = new Set<string>()

const faultyEventLog = Layer.effect(
  EventLog,
  Effect.map(EventLog, (inner) =>
    EventLog.of({
      ...inner,
      read: (sessionId, after, limit) =>
        failingReads.has(sessionId) ? Effect.die(new Error("injected event log read failure")) : inner.read(sessionId, after, limit)
    }))
)

/** The web role with a per-org cap of 2 streams and an event log that fails on demand. */
const layer = WebRole.layerServeAs("web").pipe(
  Layer.provideMerge(faultyEventLog),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })),
  Layer.provideMerge(WebRole.layerPgServices),
  Layer.provideMerge(Metrics.layerTest("web")),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error")),
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-web-test-")),
    OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: "2"
  }))),
  Layer.provideMerge(TestDatabase.layer())
)

const openStreams = Effect.gen(function*() {
  const metrics = yield* Metrics
  const session = yield* metrics.read("open_cowork_cloud_sse_connections", { stream: "session" })
  const workspace = yield* metrics.read("open_cowork_cloud_sse_connections", { stream: "workspace" })
  return session + workspace
})

/** Polls until `check` holds, or fails after 5 s with the last value. */
it.layer(layer, { excludeTestServices: true })("SSE stream slots", (it) => {
  it.effect("open, abort, HEAD and error each give the slot back; HEAD opens no stream", () =>
    Effect.scoped(Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const auth = { authorization: `Bearer ${token}` }
      const base = yield* baseUrl
      const create = () => request("POST", "/api/sessions", { token, body: { title: "slots" } }).pipe(Effect.map((r) => r.body.session.id as string))
      const healthy = yield* create()
      const broken = yield* create()
      const sessionUrl = (id: string) => `${base}/api/sessions/${id}/events`

      // open + abort
      const opened = yield* connect(sessionUrl(healthy), auth)
      assert.strictEqual(opened.status, 200)
      yield* opened.waitFor((frames) => frames.length > 0)
      yield* within(Effect.map(openStreams, (n) => n === 1), "one stream open", 5_000)
      yield* opened.close
      yield* within(Effect.map(openStreams, (n) => n === 0), "aborted stream released", 5_000)

      // HEAD: headers only, no stream, no slot (more HEADs than the cap)
      for (const path of [`/api/sessions/${healthy}/events`, "/api/events", `/api/sessions/${healthy}/events`]) {
        const head = yield* request("HEAD", path, { token })
        assert.strictEqual(head.status, 200, path)
        assert.include(head.headers.get("content-type") ?? "", "text/event-stream")
      }
      assert.strictEqual(yield* openStreams, 0, "HEAD opened no stream")

      // error: the stream's log read fails after the slot was taken
      failingReads.add(broken)
      const failed = yield* connect(sessionUrl(broken), auth)
      yield* failed.ended
      failingReads.delete(broken)
      yield* within(Effect.map(openStreams, (n) => n === 0), "failed stream released", 5_000)

      // every slot is free again: the org can hold its full cap
      const again = yield* Effect.all([connect(sessionUrl(healthy), auth), connect(`${base}/api/events`, auth)])
      assert.deepStrictEqual(again.map((c) => c.status), [200, 200])
      yield* within(Effect.map(openStreams, (n) => n === 2), "two streams open", 5_000)
      const refused = yield* request("GET", "/api/events", { token })
      assert.strictEqual(refused.status, 429, "the cap still holds")
      yield* Effect.all(again.map((c) => c.close))
      yield* within(Effect.map(openStreams, (n) => n === 0), "closed streams released", 5_000)
    })))
})
