/**
 * `npm run bench:enqueue`: the Postgres CPU of the web's prompt enqueue alone (`SessionStore.prompt`, the one-statement
 * fast path under the three prompt quotas), from many connections of ONE org at once — the contention of the drain in
 * `bench:peers` (every admission of an org waits for the org's hourly window row) without HTTP, worker or runtime, so a
 * change to the enqueue can be priced in alternating pairs on a noisy machine. Rounds of BENCH_ENQUEUE_ROUND prompts
 * (BENCH_ENQUEUE_IN_FLIGHT at a time, round robin over BENCH_ENQUEUE_SESSIONS sessions); between rounds, unmeasured,
 * the round's commands are marked acked so the pending backlog (which the queued_commands admission counts) stays at
 * BENCH_ENQUEUE_BACKLOG. CPU = every Postgres process of the cluster (/proc utime + stime; exited ones through the
 * postmaster's cutime/cstime) per prompt, over the rounds only; fsync on, `synchronous_commit` on (the row lock is held
 * through the commit's WAL flush, as in production).
 *
 * Knobs (docs/benchmarks.md, "Bench settings"): BENCH_ENQUEUE_ROUNDS (10), BENCH_ENQUEUE_ROUND (500),
 * BENCH_ENQUEUE_IN_FLIGHT (64, as the drain of bench:peers), BENCH_ENQUEUE_SESSIONS (16), BENCH_ENQUEUE_BACKLOG (0).
 */
import { Database, PgSessionStore, runMigrations } from "@cowork/postgres"
import { SessionStore } from "@cowork/services"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Os from "node:os"
import { performance } from "node:perf_hooks"
import { postgresCpu } from "./procCpu.ts"
import { benchCluster, envInt, round } from "./stack.ts"

const ROUNDS = envInt("BENCH_ENQUEUE_ROUNDS", 10)
const PER_ROUND = envInt("BENCH_ENQUEUE_ROUND", 500)
const CONCURRENCY = envInt("BENCH_ENQUEUE_IN_FLIGHT", 64)
const SESSIONS = envInt("BENCH_ENQUEUE_SESSIONS", 16)
const BACKLOG = envInt("BENCH_ENQUEUE_BACKLOG", 0, 0)
const QUOTA = { promptsPerHour: 100_000_000, queuedCommands: 100_000_000, concurrentSessions: 100_000_000 }

const main = Effect.gen(function*() {
  const { url, postmaster } = yield* benchCluster("enqueue")
  const database = Database.layer({ url: Redacted.make(url), maxConnections: CONCURRENCY + 1, applicationName: "bench" })
  const services = PgSessionStore.layer.pipe(Layer.provideMerge(database))
  yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const store = yield* SessionStore
    yield* runMigrations
    yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ('org_bench', 'bench')`)
    const sessions = yield* Effect.forEach(Array.from({ length: SESSIONS }, (_, i) => i), (i) =>
      Effect.map(store.create("org_bench", { title: `bench-${i}` }), (s) => s.id))
    if (BACKLOG > 0) {
      yield* sql.unsafe(
        `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
         SELECT 'cmd_backlog_' || g, $1, 'org_bench', 'prompt', '{"text":"backlog"}' FROM generate_series(1, $2) g`,
        [sessions[0]!, BACKLOG]
      )
    }
    const enqueueRound = (n: number) =>
      Effect.forEach(Array.from({ length: n }, (_, i) => sessions[i % sessions.length]!), (sessionId) =>
        store.prompt("org_bench", sessionId, { text: "bench", quota: QUOTA }).pipe(Effect.orDie), { concurrency: CONCURRENCY, discard: true })
    const ackRound = sql.unsafe(
      `UPDATE cloud_session_commands SET status = 'acked', completed_at = now() WHERE status = 'pending' AND id NOT LIKE 'cmd_backlog_%'`
    )
    // Warm-up: the hour's window row (its first admission takes the transaction), pools, plans.
    yield* enqueueRound(200)
    yield* ackRound
    yield* sql.unsafe(`VACUUM ANALYZE`)
    let cpu = 0
    let wall = 0
    const loadBefore = Os.loadavg().map((n) => round(n, 2)).join(" / ")
    for (let r = 0; r < ROUNDS; r++) {
      const c0 = postgresCpu(postmaster)
      const t0 = performance.now()
      yield* enqueueRound(PER_ROUND)
      wall += performance.now() - t0
      cpu += postgresCpu(postmaster) - c0
      yield* ackRound
    }
    const prompts = ROUNDS * PER_ROUND
    const result = {
      prompts,
      concurrency: CONCURRENCY,
      sessions: SESSIONS,
      backlog: BACKLOG,
      postgresCpuMsPerPrompt: round(cpu / prompts, 3),
      promptsPerSecond: round(prompts / (wall / 1000)),
      loadBefore,
      loadAfter: Os.loadavg().map((n) => round(n, 2)).join(" / ")
    }
    console.log(JSON.stringify(result))
  }).pipe(Effect.provide(services))
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
