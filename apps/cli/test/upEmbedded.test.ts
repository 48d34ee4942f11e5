import { Database, startEmbeddedPostgres } from "@cowork/postgres"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { eventually, freePort, runCli, runCliExit } from "../../../test/support/CoworkProcess.ts"

/**
 * `cowork up` on its embedded Postgres, as a real process: it reports role `all`, publishes its cluster for
 * `cowork admin` / `cowork migrate`, and on a terminal Ctrl-C (SIGINT to its whole process group) shuts down in
 * order — web drains, the worker finishes and releases its lease, the pool closes, and only then Postgres stops.
 */

const repoRoot = Path.resolve(import.meta.dirname, "../../..")
const mainPath = Path.join(repoRoot, "apps/cli/src/main.ts")

const cleanEnv = (): Record<string, string> =>
  Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith("OPEN_COWORK_")))

/** `cowork up` as the leader of its own process group, like a shell's foreground job. */
const spawnUp = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn(process.execPath, [mainPath, "up"], {
        cwd: repoRoot,
        env: { ...cleanEnv(), ...env },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")))
      return { child, output: () => output, exited }
    }),
    (up) =>
      Effect.promise(async () => {
        if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill("SIGKILL")
        await up.exited
      })
  )

const json = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    const text = await response.text()
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) as any }
  })

it.live("cowork up: role all, a published cluster for admin/migrate, and Ctrl-C stops Postgres last", () =>
  Effect.gen(function*() {
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-up-"))
    Fs.chmodSync(dataDir, 0o755) // as root, Postgres runs as `postgres` and must reach its data dir
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
    const port = yield* freePort
    const api = `http://127.0.0.1:${port}`
    const up = yield* spawnUp({
      OPEN_COWORK_DATA_DIR: dataDir,
      OPEN_COWORK_CLOUD_PORT: String(port),
      OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: "20000"
    })
    const withOutput = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.catchDefect((defect) => Effect.die(new Error(`${String(defect)}\n--- up output ---\n${up.output()}`))))
    yield* withOutput(eventually("up to be ready", Effect.suspend(() =>
      up.child.exitCode !== null
        ? Effect.die(new Error(`up exited with ${up.child.exitCode}`))
        : json(`${api}/readyz`).pipe(
          Effect.map((r) => (r.status === 200 ? r : undefined)),
          Effect.catchDefect(() => Effect.succeed(undefined))
        )
    ), { timeoutMs: 60_000, intervalMs: 200 }))
    const owner = up.output().match(/occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+/)?.[0]
    assert.isDefined(owner, "the owner token is printed on first start")
    const auth = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" })

    // 1. The process role, not the web layer's own default.
    for (const path of ["/healthz", "/livez", "/readyz"]) assert.strictEqual((yield* json(`${api}${path}`)).body.role, "all", path)
    const status = yield* json(`${api}/api/runtime/status`, { headers: auth(owner!) })
    assert.strictEqual(status.status, 200)
    assert.strictEqual(status.body.role, "all")

    // 2. The published cluster: admin and migrate use it instead of starting a second Postgres.
    const published = Database.publishedUrlPath(dataDir)
    assert.strictEqual(Fs.statSync(published).mode & 0o777, 0o600)
    const issued = yield* runCli(["admin", "token", "create", "--scopes", "web", "--name", "attached"], { OPEN_COWORK_DATA_DIR: dataDir })
    const token = issued.stdout.trim().split("\n").at(-1)!
    assert.match(token, /^occ_/)
    assert.notMatch(issued.stdout, /owner token/, "the org exists: same database as up")
    const listed = yield* json(`${api}/api/sessions`, { headers: auth(token) })
    assert.strictEqual(listed.status, 200, "the token admin created works against up")
    const migrated = yield* runCli(["migrate"], { OPEN_COWORK_DATA_DIR: dataDir })
    assert.match(migrated.stdout, /migrations: up to date/)

    // 2b. A second up on the same data dir, and a split role without a URL, are refused with one line saying why.
    const second = yield* runCliExit(["up"], { OPEN_COWORK_DATA_DIR: dataDir, OPEN_COWORK_CLOUD_PORT: String(yield* freePort) })
    assert.strictEqual(second.code, 1, second.stderr)
    assert.include(second.stderr, "already running on this data dir")
    assert.notInclude(second.stderr, "postmaster.pid", "not the raw Postgres lock-file error")
    const splitWeb = yield* runCliExit(["web"], { OPEN_COWORK_DATA_DIR: dataDir, OPEN_COWORK_CLOUD_PORT: String(yield* freePort) })
    assert.strictEqual(splitWeb.code, 1, splitWeb.stderr)
    const refusal = splitWeb.stderr.split("\n").filter((line) => line.includes('"level":"error"')).map((line) => JSON.parse(line))
    assert.strictEqual(refusal.length, 1, splitWeb.stderr)
    assert.strictEqual(refusal[0].variable, "OPEN_COWORK_DATABASE_URL")
    assert.isTrue(refusal[0].upRunning, "it found the running up")
    assert.strictEqual(refusal[0].publishedFile, published, "and names the file holding its URL")
    assert.strictEqual((yield* json(`${api}/healthz`)).status, 200, "the running up is untouched")

    // 3. Ctrl-C while a prompt runs.
    const session = (yield* json(`${api}/api/sessions`, { method: "POST", headers: auth(token), body: JSON.stringify({ title: "ctrl-c" }) })).body.session
    const accepted = yield* json(`${api}/api/sessions/${session.id}/prompt`, {
      method: "POST",
      headers: auth(token),
      body: JSON.stringify({ text: "[[slow:300]] finish me" })
    })
    assert.strictEqual(accepted.status, 202)
    yield* withOutput(eventually("the prompt to be running", json(`${api}/api/sessions/${session.id}/view`, { headers: auth(token) }).pipe(
      Effect.map((r) => (r.body.status === "running" ? true : undefined))
    ), { timeoutMs: 15_000, intervalMs: 50 }))
    process.kill(-up.child.pid!, "SIGINT") // what a terminal's Ctrl-C does: the whole foreground process group
    const code = yield* withOutput(Effect.promise(() => up.exited).pipe(Effect.timeout("45 seconds"), Effect.orDie))
    const log = up.output()
    assert.strictEqual(code, 0, log)
    const at = (message: string) => {
      const index = log.indexOf(`"message":"${message}`)
      assert.isAtLeast(index, 0, `log has "${message}"\n${log}`)
      return index
    }
    assert.isBelow(at("web draining"), at("worker drained"))
    assert.isBelow(at("command completed"), at("worker drained"))
    assert.isBelow(at("worker drained"), at("database pool closed"))
    assert.isBelow(at("database pool closed"), at("embedded Postgres stopped"))
    assert.notInclude(log, "lease expiry failed", "the worker could still release its lease")
    assert.notInclude(log, "change feed connection lost", "Postgres was not stopped under the process")
    assert.isFalse(Fs.existsSync(published), "the published URL is removed on stop")
    assert.isFalse(Fs.existsSync(Path.join(dataDir, "postgres", "postmaster.pid")), "Postgres is down")

    // 4. Without up, admin starts the cluster itself, ignoring a stale publication.
    Fs.writeFileSync(published, `postgres://cowork:cowork-embedded@127.0.0.1:${yield* freePort}/cowork\n`, { mode: 0o600 })
    const offline = yield* runCli(["admin", "token", "create", "--scopes", "web"], { OPEN_COWORK_DATA_DIR: dataDir })
    assert.match(offline.stdout.trim().split("\n").at(-1)!, /^occ_/)
    assert.isFalse(Fs.existsSync(published))

    // What the shutdown left behind: the command acked by its run, the lease released (expired), nothing running.
    const cluster = yield* startEmbeddedPostgres(Path.join(dataDir, "postgres"))
    const state = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const commands = yield* sql<{ status: string; attempt_count: number }>`
        SELECT status, attempt_count FROM cloud_session_commands WHERE session_id = ${session.id} AND kind = 'prompt'`
      const leases = yield* sql<{ released: boolean }>`
        SELECT expires_at <= now() AS released FROM cloud_worker_leases WHERE session_id = ${session.id}`
      return { commands, leases }
    }).pipe(Effect.provide(Database.layer({ url: Redacted.make(cluster.url("cowork")), maxConnections: 1 })))
    assert.deepStrictEqual(state.commands.map((c) => [c.status, Number(c.attempt_count)]), [["acked", 0]])
    assert.deepStrictEqual(state.leases.map((l) => l.released), [true])
  }).pipe(Effect.scoped), 150_000)
