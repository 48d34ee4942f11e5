/**
 * `npm run bench:append`: the Postgres CPU of the worker's owner statements alone, on ONE connection, no concurrency —
 * a measurement stable enough to compare two shapes of a statement on a shared, noisy machine. One session with a
 * backlog of prompts, leased once; per iteration: `next`, a fenced burst of two deltas, and the fenced closing append
 * with the ack (final message + `session.idle`). CPU = the backend's /proc utime + stime per iteration. The session
 * runs with `synchronous_commit = off` so the kernel's WAL fsync time (the same for any statement shape) does not
 * drown the statements' own cost; the pipeline benches keep it on.
 *
 * Knobs: BENCH_ITERATIONS (3000), BENCH_DROP_EVENTS_FK=1 (drop the events' foreign key to sessions first, to price
 * its trigger).
 */
import { Database, PgCommandQueue, PgEventLog, PgLeaseStore, runMigrations } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { performance } from "node:perf_hooks"
import { benchCluster, envInt, round } from "./stack.ts"

const ITERATIONS = envInt("BENCH_ITERATIONS", 3000)
const WARM_UP = 100

const cpuMsOf = (pid: number) => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const main = Effect.gen(function*() {
  const { url } = yield* benchCluster("append")
  const database = Database.layer({ url: Redacted.make(url), maxConnections: 1, applicationName: "bench" })
  const services = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer).pipe(Layer.provideMerge(database))
  yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* runMigrations
    if (process.env.BENCH_DROP_EVENTS_FK === "1") {
      yield* sql.unsafe(`ALTER TABLE cloud_session_events DROP CONSTRAINT cloud_session_events_session_id_fkey`)
    }
    yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ('org_bench', 'bench')`)
    yield* sql.unsafe(`INSERT INTO cloud_sessions (id, org_id, title) VALUES ('ses_bench', 'org_bench', 'bench')`)
    yield* sql.unsafe(`INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) VALUES ('ses_bench', 'org_bench', 0)`)
    yield* sql.unsafe(`INSERT INTO cloud_worker_leases (session_id) VALUES ('ses_bench')`)
    yield* sql.unsafe(
      `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
       SELECT 'cmd_bench_' || g, 'ses_bench', 'org_bench', 'prompt', '{"text":"bench"}' FROM generate_series(1, $1) g`,
      [ITERATIONS + WARM_UP]
    )
    yield* sql.unsafe(`SET synchronous_commit = off`)
    const pid = Number((yield* sql.unsafe<{ pid: number }>(`SELECT pg_backend_pid() AS pid`))[0]!.pid)
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const log = yield* EventLog
    const lease = (yield* leases.claim("bench-worker", 1, 3_600_000, 3))[0]!
    const iteration = Effect.gen(function*() {
      const command = Option.getOrThrow(yield* queue.next(lease))
      const owner = { commandId: command.id, attempt: command.attempt }
      const messageId = `msg_${command.id}`
      yield* log.append(lease, [
        { type: "assistant.message", payload: { messageId, delta: "bench ", final: false }, ...owner },
        { type: "assistant.message", payload: { messageId, delta: "reply", final: false }, ...owner }
      ])
      yield* log.append(lease, [
        { type: "assistant.message", payload: { messageId, text: "bench reply", final: true }, ...owner },
        { type: "session.idle", payload: { commandId: command.id, outcome: "acked" }, ...owner }
      ], { commandId: command.id, outcome: "acked" })
    })
    for (let i = 0; i < WARM_UP; i++) yield* iteration
    const cpuBefore = cpuMsOf(pid)
    const started = performance.now()
    for (let i = 0; i < ITERATIONS; i++) yield* iteration
    const result = {
      iterations: ITERATIONS,
      backendCpuMsPerIteration: round((cpuMsOf(pid) - cpuBefore) / ITERATIONS, 3),
      wallMsPerIteration: round((performance.now() - started) / ITERATIONS, 3),
      loadAverage: Os.loadavg().map((n) => round(n, 2)).join(" / ")
    }
    console.log(JSON.stringify(result))
  }).pipe(Effect.provide(services), Effect.orDie)
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
