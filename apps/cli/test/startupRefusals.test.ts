import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { eventually, freePort, runCliExit, spawn } from "../../../test/support/CoworkProcess.ts"

/**
 * What a new operator sees when a start cannot work: one JSON error line naming the setting to change, exit code 1,
 * no stack trace; and where the web port listens (loopback unless OPEN_COWORK_CLOUD_HOST says otherwise).
 */

/** Holds `port` on 127.0.0.1 for the scope. */
const occupy = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer()
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )

const errorLines = (output: string) =>
  output.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line)).filter((entry) => entry.level === "error")

const assertRefused = (result: { readonly code: number | string; readonly stdout: string; readonly stderr: string }) => {
  const output = `${result.stdout}${result.stderr}`
  assert.strictEqual(result.code, 1, output)
  const errors = errorLines(output)
  assert.strictEqual(errors.length, 1, `exactly one error line\n${output}`)
  assert.notInclude(output, "ServeError", "no raw error name")
  assert.notMatch(output, /\n\s+at /, "no stack trace")
  return errors[0]!
}

/** A non-loopback IPv4 address of this machine, if it has one. */
const externalAddress = Object.values(Os.networkInterfaces()).flat().find((entry) => entry?.family === "IPv4" && !entry.internal)?.address

const reachable = (host: string, port: number) =>
  Effect.promise(() =>
    fetch(`http://${host}:${port}/healthz`).then((response) => response.status === 200, () => false)
  )

it.live("port in use (web, liveness, embedded Postgres), unknown host, missing database URL: one line naming the variable, exit 1", () =>
  Effect.gen(function*() {
    const databaseUrl = yield* TestDatabase.freshDatabaseUrl
    const webPort = yield* freePort
    yield* occupy(webPort)
    const web = assertRefused(yield* runCliExit(["web"], { OPEN_COWORK_DATABASE_URL: databaseUrl, OPEN_COWORK_CLOUD_PORT: String(webPort) }))
    assert.include(web.message, `port ${webPort} is already in use`)
    assert.include(web.message, "OPEN_COWORK_CLOUD_PORT")
    assert.strictEqual(web.variable, "OPEN_COWORK_CLOUD_PORT")

    const livenessPort = yield* freePort
    yield* occupy(livenessPort)
    const worker = assertRefused(yield* runCliExit(["worker"], {
      OPEN_COWORK_DATABASE_URL: databaseUrl,
      OPEN_COWORK_CLOUD_LIVENESS_PORT: String(livenessPort)
    }))
    assert.include(worker.message, `port ${livenessPort} is already in use`)
    assert.strictEqual(worker.variable, "OPEN_COWORK_CLOUD_LIVENESS_PORT")

    const badHost = assertRefused(yield* runCliExit(["web"], {
      OPEN_COWORK_DATABASE_URL: databaseUrl,
      OPEN_COWORK_CLOUD_PORT: String(yield* freePort),
      OPEN_COWORK_CLOUD_HOST: "192.0.2.213"
    }))
    assert.strictEqual(badHost.variable, "OPEN_COWORK_CLOUD_HOST")

    const pgPort = yield* freePort
    yield* occupy(pgPort)
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-refusal-"))
    Fs.chmodSync(dataDir, 0o755) // as root, Postgres runs as `postgres` and must reach its data dir
    const embedded = assertRefused(yield* runCliExit(["up"], {
      OPEN_COWORK_DATA_DIR: dataDir,
      OPEN_COWORK_EMBEDDED_PG_PORT: String(pgPort),
      OPEN_COWORK_CLOUD_PORT: String(yield* freePort)
    }))
    assert.include(embedded.message, `port ${pgPort} is already in use`)
    assert.strictEqual(embedded.variable, "OPEN_COWORK_EMBEDDED_PG_PORT")
    Fs.rmSync(dataDir, { recursive: true, force: true })

    const noUrl = assertRefused(yield* runCliExit(["web"], {}))
    assert.strictEqual(noUrl.variable, "OPEN_COWORK_DATABASE_URL")
    assert.include(noUrl.message, "postgres/cowork.url", "says where a running up publishes its URL")
  }), 120_000)

it.live("the web port listens on loopback by default and on every interface with OPEN_COWORK_CLOUD_HOST=0.0.0.0", () =>
  Effect.gen(function*() {
    const databaseUrl = yield* TestDatabase.freshDatabaseUrl
    const loopbackPort = yield* freePort
    const loopback = yield* spawn("web-loopback", ["web"], { OPEN_COWORK_DATABASE_URL: databaseUrl, OPEN_COWORK_CLOUD_PORT: String(loopbackPort) })
    yield* eventually("web on loopback", Effect.map(reachable("127.0.0.1", loopbackPort), (ok) => (ok ? true : undefined)), { timeoutMs: 30_000 })
      .pipe(Effect.catchDefect((defect) => Effect.die(new Error(`${String(defect)}\n${loopback.output()}`))))
    if (externalAddress !== undefined) {
      assert.isFalse(yield* reachable(externalAddress, loopbackPort), `not reachable on ${externalAddress}`)
    }
    const allPort = yield* freePort
    const all = yield* spawn("web-all", ["web"], {
      OPEN_COWORK_DATABASE_URL: databaseUrl,
      OPEN_COWORK_CLOUD_PORT: String(allPort),
      OPEN_COWORK_CLOUD_HOST: "0.0.0.0"
    })
    const host = externalAddress ?? "127.0.0.1"
    yield* eventually(`web on ${host}`, Effect.map(reachable(host, allPort), (ok) => (ok ? true : undefined)), { timeoutMs: 30_000 })
      .pipe(Effect.catchDefect((defect) => Effect.die(new Error(`${String(defect)}\n${all.output()}`))))
  }).pipe(Effect.scoped), 120_000)
