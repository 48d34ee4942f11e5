import { Metrics } from "@cowork/observability"
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
import { baseUrl, bindingWithGatewayToken, orgWithToken, request } from "./support/WebTestServer.ts"

/** The web role as `cowork up` builds it (process role `all`), with a per-org cap of 2 streams. */
const layer = WebRole.layerServeAs("all").pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })),
  Layer.provideMerge(WebRole.layerPgServices),
  Layer.provideMerge(Metrics.layerTest("all")),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-web-test-")),
    OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: "2"
  }))),
  Layer.provideMerge(TestDatabase.layer())
)

/** Polls the SSE gauge (session + workspace + delivery streams) until it equals `expected`, or fails after 5 s. */
const gaugeBecomes = (expected: number) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const read = Effect.all(
      (["session", "workspace", "delivery"] as const).map((stream) => metrics.read("open_cowork_cloud_sse_connections", { stream }))
    ).pipe(Effect.map((counts) => counts.reduce((sum, n) => sum + n, 0)))
    const deadline = Date.now() + 5_000
    let value = yield* read
    while (value !== expected) {
      if (Date.now() > deadline) return assert.fail(`open_cowork_cloud_sse_connections is ${value}, expected ${expected}`)
      yield* Effect.sleep("20 millis")
      value = yield* read
    }
    return value
  })

it.layer(layer, { excludeTestServices: true })("per-org SSE stream caps", (it) => {
  it.effect("health and runtime status report the process role the launcher gave (`all` under cowork up)", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* request("GET", "/healthz")).body.role, "all")
      assert.strictEqual((yield* request("GET", "/livez")).body.role, "all")
      assert.strictEqual((yield* request("GET", "/readyz")).body.role, "all")
      const operator = yield* orgWithToken(["operator"])
      const status = yield* request("GET", "/api/runtime/status", { token: operator.token })
      assert.strictEqual(status.status, 200)
      assert.strictEqual(status.body.role, "all")
    }))

  it.effect("429 with Retry-After and retryAfterMs above the cap; other orgs unaffected; a closed stream frees its slot", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* orgWithToken(["web"])
      const b = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token: a.token, body: { title: "caps" } })).body.session
      const base = yield* baseUrl
      const sessionUrl = `${base}/api/sessions/${session.id}/events`
      const workspaceUrl = `${base}/api/events`
      const authA = { authorization: `Bearer ${a.token}` }

      const first = yield* connect(sessionUrl, authA)
      const second = yield* connect(workspaceUrl, authA)
      assert.deepStrictEqual([first.status, second.status], [200, 200])
      yield* gaugeBecomes(2)

      for (const path of [`/api/sessions/${session.id}/events`, "/api/events"]) {
        const refused = yield* request("GET", path, { token: a.token })
        assert.strictEqual(refused.status, 429, path)
        assert.strictEqual(refused.headers.get("retry-after"), "5")
        assert.strictEqual(refused.body.retryAfterMs, 5_000)
        assert.strictEqual(refused.body.error.code, "rate_limited")
        assert.strictEqual(refused.body.error.details.limit, 2)
      }
      yield* gaugeBecomes(2) // refused streams were never counted

      const other = yield* connect(workspaceUrl, { authorization: `Bearer ${b.token}` })
      assert.strictEqual(other.status, 200, "the cap is per org")
      yield* gaugeBecomes(3)

      yield* first.close
      yield* gaugeBecomes(2)
      const again = yield* connect(sessionUrl, authA)
      assert.strictEqual(again.status, 200, "the closed stream's slot is free again")
      yield* gaugeBecomes(3)

      yield* Effect.all([second.close, other.close, again.close])
      yield* gaugeBecomes(0)
      const afterAll = yield* Effect.all([connect(sessionUrl, authA), connect(workspaceUrl, authA)])
      assert.deepStrictEqual(afterAll.map((c) => c.status), [200, 200])
    })))

  it.effect("the gateway delivery stream takes one of the org's slots like session and workspace streams", () =>
    Effect.scoped(Effect.gen(function*() {
      const admin = yield* orgWithToken(["web", "admin"])
      const { gatewayToken } = yield* bindingWithGatewayToken(admin.token)
      const base = yield* baseUrl
      const deliveryUrl = `${base}/api/channels/deliveries/stream`
      const asGateway = { authorization: `Bearer ${gatewayToken}` }

      const delivery = yield* connect(deliveryUrl, asGateway)
      const workspace = yield* connect(`${base}/api/events`, { authorization: `Bearer ${admin.token}` })
      assert.deepStrictEqual([delivery.status, workspace.status], [200, 200])
      yield* gaugeBecomes(2)

      const refusedDelivery = yield* request("GET", "/api/channels/deliveries/stream", { token: gatewayToken })
      assert.strictEqual(refusedDelivery.status, 429, "a delivery stream over the org's cap")
      assert.strictEqual(refusedDelivery.headers.get("retry-after"), "5")
      assert.strictEqual(refusedDelivery.body.error.details.limit, 2)
      assert.strictEqual((yield* request("GET", "/api/events", { token: admin.token })).status, 429, "delivery streams count for the org")

      yield* delivery.close
      yield* gaugeBecomes(1)
      const again = yield* connect(deliveryUrl, asGateway)
      assert.strictEqual(again.status, 200, "the closed delivery stream's slot is free again")
      yield* Effect.all([again.close, workspace.close])
      yield* gaugeBecomes(0)
    })))
})
