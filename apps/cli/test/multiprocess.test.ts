import { type Client, makeFetch } from "@cowork/client"
import { Database } from "@cowork/postgres"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { type CoworkProcess, eventually, freePort, runCli, spawn, waitReady } from "../../../test/support/CoworkProcess.ts"
import { type SseFrame, subscribe } from "../../../test/support/SseClient.ts"

/**
 * Failover drills with real processes: one `cowork web` and two `cowork worker` children on one fresh database,
 * driven over HTTP like a client would.
 */

interface Stack {
  readonly baseUrl: string
  readonly token: string
  /** The typed API client, as the drill's token. */
  readonly api: Client
  readonly workers: ReadonlyMap<string, CoworkProcess>
  readonly web: CoworkProcess
}

const startStack = (url: string, options: { readonly leaseTtlMs: number; readonly shutdownGraceMs: number }) =>
  Effect.gen(function*() {
    // A private data dir per drill (object store, key file) under the OS temp dir, never the repo's .cowork.
    const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-drill-")) }
    const migrated = yield* runCli(["migrate"], env)
    assert.match(migrated.stdout, /migrations applied: 1_control_plane/)
    const issued = yield* runCli(["admin", "token", "create", "--scopes", "web,operator", "--name", "drill"], env)
    const token = issued.stdout.trim().split("\n").at(-1)!
    assert.match(token, /^occ_/)

    const port = yield* freePort
    const web = yield* spawn("web", ["web"], {
      ...env,
      OPEN_COWORK_CLOUD_PORT: String(port),
      OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false"
    })
    const workers = new Map<string, CoworkProcess>()
    for (const workerId of ["drill-w1", "drill-w2"]) {
      const livenessPort = yield* freePort
      workers.set(workerId, yield* spawn(workerId, ["worker"], {
        ...env,
        OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
        OPEN_COWORK_CLOUD_WORKER_ID: workerId,
        OPEN_COWORK_CLOUD_LIVENESS_PORT: String(livenessPort),
        OPEN_COWORK_CLOUD_LEASE_TTL_MS: String(options.leaseTtlMs),
        OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: String(options.shutdownGraceMs),
        OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500",
        OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "500"
      }))
    }
    const baseUrl = `http://127.0.0.1:${port}`
    yield* waitReady(web, baseUrl)
    const sql = yield* SqlClient.SqlClient
    yield* eventually("both workers to heartbeat", Effect.gen(function*() {
      const rows = yield* sql<{ worker_id: string }>`SELECT worker_id FROM cloud_worker_heartbeats`.pipe(Effect.orDie)
      return rows.length >= 2 ? true : undefined
    }), { timeoutMs: 30_000 })
    return { baseUrl, token, api: yield* makeFetch({ baseUrl, token }), workers, web } satisfies Stack
  })

/** Runs `drill` against a fresh database, with a `SqlClient` on it for inspection. */
const onFreshDatabase = <A, E>(drill: (url: string) => Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    return yield* drill(url).pipe(
      Effect.scoped,
      Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 4, applicationName: "drill-inspector" }))
    )
  })

interface EventRow {
  readonly sequence: number
  readonly type: string
  readonly payload: any
  readonly commandId: string | null
  readonly attempt: number | null
}

const eventsOf = (sessionId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ sequence: bigint; type: string; payload: any; command_id: string | null; attempt: number | null }>`
      SELECT sequence, type, payload, command_id, attempt FROM cloud_session_events WHERE session_id = ${sessionId} ORDER BY sequence`
    return rows.map((r): EventRow => ({
      sequence: Number(r.sequence),
      type: r.type,
      payload: r.payload,
      commandId: r.command_id,
      attempt: r.attempt === null ? null : Number(r.attempt)
    }))
  }).pipe(Effect.orDie)

const commandsOf = (sessionId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ id: string; status: string; attempt_count: number }>`
      SELECT id, status, attempt_count FROM cloud_session_commands WHERE session_id = ${sessionId} ORDER BY position`
    return rows.map((r) => ({ id: r.id, status: r.status, attemptCount: Number(r.attempt_count) }))
  }).pipe(Effect.orDie)

const leaseOf = (sessionId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ worker_id: string | null; epoch: bigint; live: boolean }>`
      SELECT worker_id, epoch, expires_at > now() AS live FROM cloud_worker_leases WHERE session_id = ${sessionId}`
    const row = rows[0]!
    return { workerId: row.worker_id, epoch: Number(row.epoch), live: row.live }
  }).pipe(Effect.orDie)

/** Creates a session, subscribes to its SSE stream, and queues `prompts`; returns the command ids. */
const startSession = (stack: Stack, prompts: ReadonlyArray<string>, frames: Array<SseFrame>) =>
  Effect.gen(function*() {
    const sessionId = (yield* stack.api.sessions.create({ payload: { title: "drill" } }).pipe(Effect.orDie)).session.id
    yield* subscribe(`${stack.baseUrl}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${stack.token}` }, (frame) => {
      frames.push(frame)
    })
    const commandIds: Array<string> = []
    for (const [i, text] of prompts.entries()) {
      const accepted = yield* stack.api.sessions.prompt({ params: { id: sessionId }, payload: { text, idempotencyKey: `p${i}` } })
        .pipe(Effect.orDie)
      commandIds.push(accepted.commandId)
    }
    return { sessionId, commandIds }
  })

/** Waits until the first command is mid-run (some assistant output written) and returns its lease owner. */
const ownerMidCommand = (sessionId: string, commandId: string) =>
  eventually("a worker to be mid-command", Effect.gen(function*() {
    const lease = yield* leaseOf(sessionId)
    const events = yield* eventsOf(sessionId)
    const started = events.some((e) => e.type === "assistant.message" && e.commandId === commandId)
    return started && lease.live && lease.workerId !== null ? lease : undefined
  }), { timeoutMs: 30_000 })

/** Waits until every command of the session reached a final status. */
const allSettled = (sessionId: string, timeoutMs: number) =>
  eventually("every command to settle", Effect.gen(function*() {
    const commands = yield* commandsOf(sessionId)
    return commands.every((c) => c.status !== "pending" && c.status !== "running") ? commands : undefined
  }), { timeoutMs, intervalMs: 100 })

/** The invariants of a recovered session: a contiguous log, each command acked once with one final reply. */
const assertRecovered = (sessionId: string, commandIds: ReadonlyArray<string>, retriedCommandId: string, frames: ReadonlyArray<SseFrame>) =>
  Effect.gen(function*() {
    const commands = yield* commandsOf(sessionId)
    assert.deepStrictEqual(commands.map((c) => [c.id, c.status]), commandIds.map((id) => [id, "acked"]), "every command acked")

    const events = yield* eventsOf(sessionId)
    assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), "sequences are contiguous 1..N")

    const retried = events.filter((e) => e.type === "command.retried")
    assert.strictEqual(retried.length, 1, "exactly one retry")
    assert.strictEqual(retried[0]!.payload.commandId, retriedCommandId)
    assert.strictEqual(retried[0]!.payload.abandonedAttempt, 1)
    assert.strictEqual(retried[0]!.payload.attempt, 2)

    for (const commandId of commandIds) {
      const finals = events.filter((e) => e.type === "assistant.message" && e.payload.final === true && e.commandId === commandId)
      assert.strictEqual(finals.length, 1, `one final reply for ${commandId}`)
      // The ack commits in the same fenced statement as the command's session.idle: one idle = acked once.
      const idles = events.filter((e) => e.type === "session.idle" && e.commandId === commandId)
      assert.strictEqual(idles.length, 1, `one session.idle (one ack) for ${commandId}`)
      assert.isAbove(idles[0]!.sequence, finals[0]!.sequence)
    }
    assert.strictEqual(events.filter((e) => e.type === "session.idle").length, commandIds.length)
    const retriedAt = retried[0]!.sequence
    const afterRetry = events.filter((e) => e.sequence > retriedAt && e.commandId === retriedCommandId)
    assert.isTrue(afterRetry.every((e) => e.attempt === null || e.attempt === 2), "the re-run writes as attempt 2")

    const view = yield* eventually("the SSE stream to deliver the whole log", Effect.sync(() =>
      frames.filter((f) => f.id !== undefined).length >= events.length ? true : undefined), { timeoutMs: 10_000 })
    assert.isTrue(view)
    const ids = frames.filter((f) => f.id !== undefined).map((f) => Number(f.id))
    assert.deepStrictEqual(ids, events.map((e) => e.sequence), "the stream has no gap and no duplicate")
  })

describe("multi-process failover drill", () => {
  it.live("SIGKILL of the lease owner mid-command: the other worker re-runs it; nothing lost, reordered or acked twice", () =>
    onFreshDatabase((url) => Effect.gen(function*() {
      // A 3 s lease: short enough for a quick failover, long enough that renewals (every TTL/3) survive a loaded CI box.
      const stack = yield* startStack(url, { leaseTtlMs: 3_000, shutdownGraceMs: 5_000 })
      const frames: Array<SseFrame> = []
      const { sessionId, commandIds } = yield* startSession(stack, [
        "[[slow:250]] [[events:12]] first",
        "second",
        "[[tool]] third"
      ], frames)
      const owner = yield* ownerMidCommand(sessionId, commandIds[0]!)
      const victim = stack.workers.get(owner.workerId!)!
      victim.child.kill("SIGKILL")
      assert.strictEqual(yield* Effect.promise(() => victim.exited), "SIGKILL")

      yield* allSettled(sessionId, 30_000)
      const survivor = [...stack.workers.values()].find((w) => w !== victim)!
      assert.isNull(survivor.child.exitCode, "the survivor is still running")
      const lease = yield* leaseOf(sessionId)
      assert.isAbove(lease.epoch, owner.epoch, "the survivor took a newer lease")
      yield* assertRecovered(sessionId, commandIds, commandIds[0]!, frames)

      const view = yield* stack.api.sessions.view({ params: { id: sessionId }, query: {} }).pipe(Effect.orDie)
      assert.strictEqual(view.status, "idle")
      const texts = (role: string) => view.messages.filter((m) => m.role === role).map((m) => m.text)
      assert.deepStrictEqual(texts("user"), ["[[slow:250]] [[events:12]] first", "second", "[[tool]] third"])
      assert.deepStrictEqual(texts("assistant"), ["echo: first", "echo: second", "echo: third"], "each reply once, in order")
    })), { timeout: 90_000 })

  it.live("SIGTERM of the lease owner mid-command: it releases the lease and the other worker continues well before the TTL", () =>
    onFreshDatabase((url) => Effect.gen(function*() {
      const leaseTtlMs = 20_000
      const stack = yield* startStack(url, { leaseTtlMs, shutdownGraceMs: 200 })
      const frames: Array<SseFrame> = []
      const { sessionId, commandIds } = yield* startSession(stack, ["[[slow:200]] [[events:15]] long"], frames)
      const owner = yield* ownerMidCommand(sessionId, commandIds[0]!)
      const victim = stack.workers.get(owner.workerId!)!
      const survivorId = [...stack.workers.keys()].find((id) => id !== owner.workerId)!
      const signalledAt = Date.now()
      victim.child.kill("SIGTERM")

      yield* eventually("the other worker to take the lease", Effect.gen(function*() {
        const lease = yield* leaseOf(sessionId)
        return lease.workerId === survivorId && lease.live ? lease : undefined
      }), { timeoutMs: leaseTtlMs })
      const takeoverMs = Date.now() - signalledAt
      assert.isBelow(takeoverMs, 5_000, `takeover after ${takeoverMs} ms must not wait for the ${leaseTtlMs} ms TTL`)
      assert.strictEqual(yield* Effect.promise(() => victim.exited), 0, `graceful exit\n${victim.output()}`)

      yield* allSettled(sessionId, 30_000)
      yield* assertRecovered(sessionId, commandIds, commandIds[0]!, frames)
    })), { timeout: 90_000 })
})
