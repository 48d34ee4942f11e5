import { Logging, Metrics } from "@cowork/observability"
import { NodeServer } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, type LogLevel, References } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import * as WebRole from "../src/WebRole.ts"
import { orgWithToken, request } from "./support/WebTestServer.ts"

/**
 * The per-request log line: every failure (status >= 400) and every slow request at info; a fast success only at
 * debug (it is counted in the HTTP metrics either way).
 */
const withLog = (level: LogLevel.LogLevel, env: Record<string, string>) => {
  const lines: Array<Record<string, unknown>> = []
  const layer = WebRole.layerServe.pipe(
    Layer.provideMerge(NodeServer.layerOn(0)),
    Layer.provideMerge(WebRole.layerPgServices),
    Layer.provideMerge(Metrics.layerTest("web")),
    Layer.provide(Logging.layerTo("web", (line) => lines.push(JSON.parse(line)))),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, level)),
    Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
      OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-web-test-")),
      ...env
    }))),
    Layer.provideMerge(TestDatabase.layer())
  )
  const requestLines = () => lines.filter((line) => line.message === "http request")
  return { layer, requestLines }
}

const info = withLog("Info", {})
it.layer(info.layer)("http request line at info", (it) => {
  it.effect("a fast success writes none; a 404 and a 401 write one each, with route, status and duration", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const ok = yield* request("GET", "/api/sessions", { token })
      assert.strictEqual(ok.status, 200)
      const missing = yield* request("GET", "/api/sessions/ses_missing", { token })
      assert.strictEqual(missing.status, 404)
      const refused = yield* request("GET", "/api/sessions", { token: "occ_not_a_token_at_all" })
      assert.strictEqual(refused.status, 401)
      const logged = info.requestLines()
      assert.deepStrictEqual(logged.map((line) => [line.level, line.status, line.route]), [
        ["info", 404, "/api/sessions/:id"],
        ["info", 401, "/api/sessions"]
      ])
      for (const line of logged) {
        assert.strictEqual(typeof line.duration_ms, "number")
        assert.strictEqual(typeof line.request_id, "string")
        assert.notInclude(JSON.stringify(line), "occ_not_a_token_at_all")
      }
    }))
})

const slow = withLog("Info", { OPEN_COWORK_CLOUD_SLOW_REQUEST_MS: "0" })
it.layer(slow.layer)("http request line for a slow success", (it) => {
  it.effect("a success at or above OPEN_COWORK_CLOUD_SLOW_REQUEST_MS is logged at info", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      assert.strictEqual((yield* request("GET", "/api/sessions", { token })).status, 200)
      assert.deepStrictEqual(slow.requestLines().map((line) => [line.level, line.status, line.route]), [["info", 200, "/api/sessions"]])
    }))
})

const debug = withLog("Debug", {})
it.layer(debug.layer)("http request line at debug", (it) => {
  it.effect("a fast success is logged at debug when debug is enabled", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      assert.strictEqual((yield* request("GET", "/api/sessions", { token })).status, 200)
      assert.deepStrictEqual(debug.requestLines().map((line) => [line.level, line.status, line.route]), [["debug", 200, "/api/sessions"]])
    }))
})
