import { Metrics } from "@cowork/observability"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, References } from "effect"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { within } from "../../../test/support/Eventually.ts"
import { connect } from "../../../test/support/SseClient.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { SessionEventHub } from "../src/SessionEventHub.ts"
import { SseStreamCaps } from "../src/SseStreamCaps.ts"
import { WebLifecycle } from "../src/WebLifecycle.ts"
import * as WebRole from "../src/WebRole.ts"
import { baseUrl, orgWithToken, request } from "./support/WebTestServer.ts"

/** The web role with a per-org cap of 3 streams. */
const layer = WebRole.layerServeAs("web").pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })),
  Layer.provideMerge(WebRole.layerPgServices),
  Layer.provideMerge(Metrics.layerTest("web")),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error")),
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-web-test-")),
    OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: "3"
  }))),
  Layer.provideMerge(TestDatabase.layer())
)

/** What an open stream holds on the process: its gauge, its org's slots, its hub subscription. */
const held = (orgIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const caps = yield* SseStreamCaps
    const hub = yield* SessionEventHub
    const gauge = (yield* metrics.read("open_cowork_cloud_sse_connections", { stream: "session" })) +
      (yield* metrics.read("open_cowork_cloud_sse_connections", { stream: "workspace" }))
    let slots = 0
    for (const orgId of orgIds) slots += yield* caps.open(orgId)
    return { gauge, slots, subscribers: yield* hub.subscribers }
  })

const holding = (orgIds: ReadonlyArray<string>, n: number, what: string) =>
  within(
    Effect.map(held(orgIds), (h) => h.gauge === n && h.slots === n && h.subscribers === n),
    `${what}: gauge, slots and hub subscribers at ${n}`,
    5_000
  )

/**
 * However a session or workspace stream ends — its client closes it, its token is revoked, the process drains — its
 * slot, its `sse_connections` gauge and its hub subscription are given back (the request ended when the stream was
 * handed to its connection; the stream's own scope closes when the response does).
 */
it.layer(layer, { excludeTestServices: true })("SSE stream release", (it) => {
  it.effect("client close, revocation, the org cap and drain each give back every stream's slot, gauge and subscription", () =>
    Effect.scoped(Effect.gen(function*() {
      const admin = yield* orgWithToken(["admin", "web"])
      const base = yield* baseUrl
      const created = yield* request("POST", "/api/sessions", { token: admin.token, body: { title: "release" } })
      const sessionId = created.body.session.id as string
      const open = (token: string) =>
        Effect.all([
          connect(`${base}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${token}` }),
          connect(`${base}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${token}` }),
          connect(`${base}/api/events`, { authorization: `Bearer ${token}` })
        ])
      const orgs = [admin.orgId]

      // the clients close their connections
      const first = yield* open(admin.token)
      assert.deepStrictEqual(first.map((c) => c.status), [200, 200, 200])
      yield* holding(orgs, 3, "three streams open")
      // the org is at its cap: a refused stream takes nothing
      const refused = yield* request("GET", "/api/events", { token: admin.token })
      assert.strictEqual(refused.status, 429)
      yield* holding(orgs, 3, "the refused stream took nothing")
      yield* Effect.all(first.map((c) => c.close))
      yield* holding(orgs, 0, "closed by their clients")

      // the token they were opened with is revoked
      const issued = yield* request("POST", "/api/api-tokens", { token: admin.token, body: { name: "streams", scopes: ["web"] } })
      const revocable = yield* open(issued.body.secret as string)
      assert.deepStrictEqual(revocable.map((c) => c.status), [200, 200, 200])
      yield* holding(orgs, 3, "three streams on the second token")
      const revoked = yield* request("DELETE", `/api/api-tokens/${issued.body.token.id}`, { token: admin.token })
      assert.strictEqual(revoked.status, 200)
      yield* Effect.all(revocable.map((c) => c.ended))
      yield* holding(orgs, 0, "ended by the revocation")

      // the process drains: the streams end, each after its frames so far
      const last = yield* open(admin.token)
      yield* Effect.all(last.map((c) => c.waitFor((frames) => frames.length > 0)))
      yield* holding(orgs, 3, "three streams before the drain")
      yield* (yield* WebLifecycle).beginDrain
      yield* Effect.all(last.map((c) => c.ended))
      yield* holding(orgs, 0, "ended by the drain")
    })))
})
