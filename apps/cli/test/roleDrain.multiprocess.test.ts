import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Net from "node:net"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { type CoworkProcess, eventually, freePort, refusesConnections, runCli, spawn } from "../../../test/support/CoworkProcess.ts"

/**
 * SIGTERM of a real `cowork gateway`, `cowork worker` and `cowork scheduler` with two keep-alive clients on its HTTP
 * server (the gateway's API, the worker's and scheduler's probe port): one idle, one using it — a request in flight
 * when the shutdown begins, then one every 50 ms on the same connection, as a provider's webhook client or a scraper
 * does. The idle connection Node closes by itself; the busy one it would keep serving, each answer keeping it alive,
 * until the client left. From the shutdown on the server must answer `Connection: close`, close each connection once
 * its answer is written, and the process exit well before any grace or keep-alive timeout (all set far longer than
 * the wait).
 */

/** How long the test waits for the exit: a fraction of every grace involved, so an exit that waited for one fails. */
const EXIT_DEADLINE_MS = 10_000
const LONG_MS = "120000"
const longTimeouts = {
  OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: LONG_MS,
  OPEN_COWORK_CLOUD_HTTP_KEEP_ALIVE_TIMEOUT_MS: LONG_MS,
  OPEN_COWORK_CLOUD_HTTP_HEADERS_TIMEOUT_MS: LONG_MS,
  OPEN_COWORK_CLOUD_HTTP_REQUEST_TIMEOUT_MS: LONG_MS
}

const drains = (proc: CoworkProcess, port: number, path: string) =>
  Effect.gen(function*() {
    const url = `http://127.0.0.1:${port}${path}`
    yield* eventually(`${proc.name} to listen`, Effect.promise(() =>
      fetch(url, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status, () => undefined)), { timeoutMs: 60_000 })

    const request = `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n`
    // An idle keep-alive client: one answered request, then nothing.
    const idle = Net.connect(port, "127.0.0.1")
    yield* Effect.addFinalizer(() => Effect.sync(() => idle.destroy()))
    let idleAnswered = false
    let idleClosed = false
    idle.on("data", () => (idleAnswered = true))
    idle.on("close", () => (idleClosed = true))
    idle.on("error", () => {})
    idle.write(`${request}\r\n`)
    yield* eventually("the idle client's answer", Effect.sync(() => (idleAnswered ? true : undefined)), { timeoutMs: 10_000, intervalMs: 20 })

    // A busy keep-alive client.
    const socket = Net.connect(port, "127.0.0.1")
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    let received = ""
    let closed = false
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")))
    socket.on("close", () => (closed = true))
    socket.on("error", () => {})
    const answers = () => received.split("HTTP/1.1 ").length - 1
    // One answered request (the connection is kept alive), then the next one begun: in flight from here.
    socket.write(`${request}\r\n`)
    yield* eventually("the first answer", Effect.sync(() => (answers() === 1 ? true : undefined)), { timeoutMs: 10_000, intervalMs: 20 })
    assert.notMatch(received, /connection: close/i, "kept alive before the shutdown")
    socket.write(request)

    proc.child.kill("SIGTERM")
    yield* eventually("the server to stop accepting connections", refusesConnections(port), { timeoutMs: 10_000, intervalMs: 20 })
    // The request in flight completes; the client goes on using its connection while it is open.
    socket.write("\r\n")
    const busy = setInterval(() => {
      if (!closed && socket.writable) socket.write(`${request}\r\n`)
    }, 50)
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(busy)))

    const exit = yield* Effect.promise(() => proc.exited).pipe(
      Effect.timeoutOrElse({
        duration: EXIT_DEADLINE_MS,
        orElse: () =>
          Effect.die(new Error(`${proc.name} still running ${EXIT_DEADLINE_MS} ms after SIGTERM (${answers()} answers on the client's connection)\n${proc.output()}`))
      })
    )
    assert.strictEqual(exit, 0, proc.output())
    assert.isAtLeast(answers(), 2, "the request in flight was answered")
    assert.match(received.slice(received.indexOf("HTTP/1.1 ", 1)), /connection: close/i, `told not to reuse the connection: ${JSON.stringify(received)}`)
    assert.isTrue(closed, "the server closed the connection")
    assert.isTrue(idleClosed, "the idle connection was closed too")
  })

it.live("gateway: SIGTERM with a busy keep-alive client exits before the grace", () =>
  Effect.gen(function*() {
    const port = yield* freePort
    const proc = yield* spawn("gateway", ["gateway"], {
      ...longTimeouts,
      // Nothing listens there: the gateway serves its probes while the cloud is unreachable.
      OPEN_COWORK_GATEWAY_CLOUD_URL: `http://127.0.0.1:${yield* freePort}`,
      OPEN_COWORK_GATEWAY_TOKEN: "occ_drain-test-unused",
      OPEN_COWORK_GATEWAY_PORT: String(port)
    })
    yield* drains(proc, port, "/health")
  }), 120_000)

for (const role of ["worker", "scheduler"] as const) {
  it.live(`${role}: SIGTERM with a busy keep-alive client on the probe port exits before the grace`, () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const env = { OPEN_COWORK_DATABASE_URL: url }
      yield* runCli(["migrate"], env)
      const port = yield* freePort
      const proc = yield* spawn(role, [role], {
        ...env,
        ...longTimeouts,
        OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
        OPEN_COWORK_CLOUD_LIVENESS_PORT: String(port)
      })
      yield* drains(proc, port, "/livez")
    }), 120_000)
}
