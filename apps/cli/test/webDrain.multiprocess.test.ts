import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { eventually, freePort, refusesConnections, runCli, spawn, waitReady } from "../../../test/support/CoworkProcess.ts"

/**
 * SIGTERM of a real `cowork web` while clients hold keep-alive connections (as the gateway's agent does): an idle
 * one, an open SSE stream, and a request whose body is still arriving. The process must stop accepting, let the
 * request finish (answered with `Connection: close`), end the stream cleanly, close the connections and exit —
 * well before the shutdown grace and the keep-alive timeout, both set far longer than the wait here.
 */

const GRACE_MS = 120_000
/** How long the test waits for the exit: a fraction of the grace, so an exit that waited for it fails. */
const EXIT_DEADLINE_MS = 20_000

it.live("SIGTERM with keep-alive clients: the in-flight request finishes, streams end, and the process exits before the grace", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const env = { OPEN_COWORK_DATABASE_URL: url }
    yield* runCli(["migrate"], env)
    const token = (yield* runCli(["admin", "token", "create", "--scopes", "web", "--name", "drain"], env)).stdout.trim().split("\n").at(-1)!
    const port = yield* freePort
    const web = yield* spawn("web", ["web"], {
      ...env,
      OPEN_COWORK_CLOUD_PORT: String(port),
      OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
      OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      OPEN_COWORK_CLOUD_HTTP_KEEP_ALIVE_TIMEOUT_MS: String(GRACE_MS * 2)
    })
    const baseUrl = `http://127.0.0.1:${port}`
    yield* waitReady(web, baseUrl)
    const auth = { authorization: `Bearer ${token}` }
    const agent = new Http.Agent({ keepAlive: true })
    yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))

    // An idle keep-alive connection.
    yield* Effect.promise(() =>
      new Promise<void>((resolve) => Http.get(`${baseUrl}/healthz`, { agent }, (res) => res.resume().on("end", resolve)))
    )
    // An open SSE stream.
    const stream = { ended: false, failed: undefined as string | undefined }
    yield* Effect.promise(() =>
      new Promise<void>((resolve) => {
        const request = Http.get(`${baseUrl}/api/events`, { agent, headers: { ...auth, accept: "text/event-stream" } }, (res) => {
          assert.strictEqual(res.statusCode, 200)
          res.once("data", () => resolve())
          res.on("end", () => (stream.ended = true))
          res.on("error", (error) => (stream.failed = String(error)))
        })
        request.on("error", (error) => (stream.failed = String(error)))
      })
    )
    // A request in flight: the server has taken it (it asked for the body: 100 Continue), the body is not complete.
    const body = JSON.stringify({ title: "finished during the drain" })
    let answer: { status: number; connection: string | undefined; body: string } | undefined
    let failed: string | undefined
    const slow = Http.request(`${baseUrl}/api/sessions`, {
      method: "POST",
      agent,
      headers: { ...auth, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), expect: "100-continue" }
    }, (res) => {
      let text = ""
      res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")))
      res.on("end", () => (answer = { status: res.statusCode!, connection: res.headers.connection, body: text }))
    })
    slow.on("error", (error) => (failed = String(error)))
    const continued = new Promise<void>((resolve) => slow.once("continue", resolve))
    slow.flushHeaders()
    yield* Effect.promise(() => continued).pipe(
      Effect.timeoutOrElse({ duration: 10_000, orElse: () => Effect.die(new Error(`no 100 Continue\n${web.output()}`)) })
    )
    slow.write(body.slice(0, 5))

    web.child.kill("SIGTERM")
    yield* eventually("the server to stop accepting connections", refusesConnections(port), { timeoutMs: 10_000, intervalMs: 20 })
    slow.end(body.slice(5))

    const exit = yield* Effect.promise(() => web.exited).pipe(
      Effect.timeoutOrElse({
        duration: EXIT_DEADLINE_MS,
        orElse: () => Effect.die(new Error(`web still running ${EXIT_DEADLINE_MS} ms after SIGTERM\n${web.output()}`))
      })
    )
    assert.strictEqual(exit, 0, web.output())
    assert.isUndefined(failed)
    assert.deepInclude(answer, { status: 201, connection: "close" }, "answered, and told not to reuse the connection")
    assert.strictEqual(JSON.parse(answer!.body).session.title, "finished during the drain")
    assert.isTrue(stream.ended, "the SSE stream ended")
    assert.isUndefined(stream.failed)
  }), 120_000)
