import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Net from "node:net"
import { baseUrl, layer as webLayer, orgWithToken, request } from "./support/WebTestServer.ts"

/** The test server with short HTTP timeouts, so a slow client is cut within the test's deadline. */
const layer = webLayer.pipe(
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_CLOUD_HTTP_REQUEST_TIMEOUT_MS: "1500",
    OPEN_COWORK_CLOUD_HTTP_HEADERS_TIMEOUT_MS: "1000"
  })))
)

interface RawExchange {
  readonly status: number
  readonly head: string
  readonly body: string
  /** The server closed the connection (within the deadline). */
  readonly closed: boolean
}

/**
 * Writes `chunks` to a fresh connection and collects what comes back until the server closes it or `deadlineMs`
 * passes (then the connection counts as left open).
 */
const exchange = (chunks: ReadonlyArray<string>, deadlineMs = 5_000) =>
  Effect.gen(function*() {
    const port = Number(new URL(yield* baseUrl).port)
    return yield* Effect.promise(() =>
      new Promise<RawExchange>((resolve) => {
        const socket = Net.connect(port, "127.0.0.1", () => {
          for (const chunk of chunks) socket.write(chunk)
        })
        const received: Array<Buffer> = []
        const finish = (closed: boolean) => {
          clearTimeout(timer)
          socket.destroy()
          const text = Buffer.concat(received).toString("utf8")
          const split = text.indexOf("\r\n\r\n")
          resolve({
            status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
            head: split < 0 ? text : text.slice(0, split),
            body: split < 0 ? "" : text.slice(split + 4),
            closed
          })
        }
        const timer = setTimeout(() => finish(false), deadlineMs)
        socket.on("data", (chunk) => received.push(chunk))
        socket.on("error", () => {})
        socket.on("close", () => finish(true))
      })
    )
  })

const errorBody = (body: string) => JSON.parse(body) as { error: { code: string; message: string } }

it.layer(layer, { excludeTestServices: true })("HTTP edges", (it) => {
  it.effect("parser errors answer in the error shape: 431 for oversized headers, 400 for a bad request line", () =>
    Effect.gen(function*() {
      const big = yield* exchange([`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`])
      assert.strictEqual(big.status, 431)
      assert.match(big.head, /content-type: application\/json/i)
      assert.strictEqual(errorBody(big.body).error.code, "request_header_fields_too_large")
      assert.isTrue(big.closed)

      const garbage = yield* exchange(["GARBAGE\r\n\r\n"])
      assert.strictEqual(garbage.status, 400)
      assert.match(garbage.head, /content-type: application\/json/i)
      assert.strictEqual(errorBody(garbage.body).error.code, "bad_request")
    }))

  it.effect("a method a route does not take is a 405 with Allow and the error shape (HEAD on a POST route included)", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token, body: {} })).body.session
      const head = yield* request("HEAD", `/api/sessions/${session.id}/prompt`, { token })
      assert.strictEqual(head.status, 405)
      assert.strictEqual(head.headers.get("allow"), "POST")
      assert.include(head.headers.get("content-type") ?? "", "application/json")
      const get = yield* request("GET", `/api/sessions/${session.id}/prompt`, { token })
      assert.strictEqual(get.status, 405)
      assert.strictEqual(get.headers.get("allow"), "POST")
      assert.strictEqual(get.body.error.code, "method_not_allowed")
      const unknown = yield* request("GET", "/api/nothing-here", { token })
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body.error.code, "not_found")
    }))

  it.effect("an unauthenticated request with a body gets its 401 and the connection is closed", () =>
    Effect.gen(function*() {
      const refused = yield* exchange([
        "POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
      ])
      assert.strictEqual(refused.status, 401)
      assert.strictEqual(errorBody(refused.body).error.code, "unauthorized")
      assert.isTrue(refused.closed, "the server closed the connection after the 401")
    }))

  it.effect("a body that never finishes arriving is cut at the request timeout with a 408 in the error shape", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const slow = yield* exchange([
        `POST /api/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ti`
      ], 10_000)
      assert.isTrue(slow.closed, "the server closed the slow request's connection")
      assert.strictEqual(slow.status, 408)
      assert.strictEqual(errorBody(slow.body).error.code, "request_timeout")

      const slowHeaders = yield* exchange(["GET /healthz HTTP/1.1\r\nHost: x\r\n"], 10_000)
      assert.isTrue(slowHeaders.closed, "the server closed the connection whose headers never ended")
    }))
})
