/**
 * `npm run bench:history`: is the owner's per-command work flat as history grows? On one embedded Postgres:
 *
 * A. an empty database: 200 fresh sessions × 5 prompts (enqueued through SessionStore), worked off by 8 fibers
 *    through the real stores — the worker's path (claim → start → close) and the legacy one (claim → next →
 *    append + ack → releaseIfIdle) on separate sessions;
 * B. the same after seeding history through the real schema: BENCH_HISTORY_SESSIONS (10,000) sessions ×
 *    BENCH_HISTORY_COMMANDS (100) acked commands × 5 events each (1,000,000 commands, 5,000,000 events by default),
 *    VACUUM ANALYZE; the measured sessions are seeded ones (each with its own history);
 *    A and B of a round run alternated, BENCH_HISTORY_CHUNK (40) sessions at a time, so both see the same load;
 * C. the same after one retention pass (`Retention`, as `cowork admin retention run`) that deletes every acked command
 *    and prunes every projected event (ages of 1 ms), timed (rows deleted per second), then VACUUM ANALYZE (what
 *    autovacuum does later); measured on other seeded sessions.
 *
 * BENCH_HISTORY_DIR=<dir> keeps the seeded cluster for re-measurement (see `main`).
 *
 * Per hot statement (pg_stat_statements, reset before each phase): calls, mean execution and planning time, and
 * shared buffers touched per call (hit + read: the work, independent of the machine's load). Prints the ratio
 * B / A per statement and appends a section to docs/benchmarks.md (unless BENCH_NO_APPEND=1).
 */
import type { EventDraft } from "@cowork/domain"
import { Database, PgCommandQueue, PgEventLog, PgLeaseStore, PgRetention, PgSessionStore, PgTokens, runMigrations, startEmbeddedPostgres } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore, retentionPass, SessionStore, Tokens } from "@cowork/services"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { postgresCpu } from "./procCpu.ts"
import { envInt, gitHead, machine as machineOf, round } from "./stack.ts"
import { sampleWaits, type WaitSample, waitsMarkdown } from "./waitSampler.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const HISTORY_SESSIONS = envInt("BENCH_HISTORY_SESSIONS", 10_000)
const HISTORY_COMMANDS = envInt("BENCH_HISTORY_COMMANDS", 100)
const EVENTS_PER_COMMAND = 5
const MEASURED_SESSIONS = 200
const PROMPTS_PER_SESSION = 5
/**
 * Worker fibers; prompts are enqueued 2 × FIBERS at a time. The clients multiplex (as the product's roles do): the
 * fibers' statements are pipelined into one connection and run one after another in its backend, so a statement never
 * waits for another's lock either way; 1: no pipeline (each statement sent alone).
 */
const FIBERS = envInt("BENCH_HISTORY_FIBERS", 8)
/** Sessions per chunk: a round alternates the empty and the full database chunk by chunk (`measure`). */
const CHUNK_SESSIONS = envInt("BENCH_HISTORY_CHUNK", 40)
/** `1`: one unmeasured turn on every measured session before each round (an ongoing conversation, not a first touch). */
const ACTIVE = process.env.BENCH_HISTORY_ACTIVE === "1"
/** `1`: sample who waits on what (pg_stat_activity + pg_locks every 10 ms) per database; attribution only. */
const SAMPLE_WAITS = process.env.BENCH_SAMPLE_WAITS === "1"
/** `1`: the "full" side is a second empty database (an A/A control: the ratios' spread from the box alone). */
const CONTROL = process.env.BENCH_HISTORY_CONTROL === "1"

/**
 * The hot statements, each by fragments only its text has (all must occur) — one list for both the pg_stat_statements
 * entries (`classify`) and the wait sampler's SQL (`classifySql`).
 */
const SHAPES: ReadonlyArray<{ readonly name: string; readonly fragments: ReadonlyArray<string>; readonly pattern?: string }> = [
  { name: "claim", fragments: ["candidates AS"] },
  { name: "start (next + opening events)", fragments: ["opening AS"] },
  { name: "close (append + ack + release)", fragments: ["idle AS"] },
  { name: "releaseIfIdle", fragments: ["busy AS"] },
  { name: "next", fragments: ["started AS"] },
  { name: "enqueue (one statement)", fragments: ["ses AS"] },
  { name: "append (fenced)", fragments: ["fence AS"], pattern: "cloud_worker_leases l\\s+WHERE" }
]

/** Which hot statement a pg_stat_statements entry is, by its text. */
const classify = (query: string): string | undefined =>
  SHAPES.find((shape) =>
    shape.fragments.every((fragment) => query.includes(fragment)) && (shape.pattern === undefined || new RegExp(shape.pattern).test(query))
  )?.name

/** The same, as a SQL expression over `pg_stat_activity` alias `a` (`BENCH_SAMPLE_WAITS=1`). */
const classifySql = (a: string) =>
  `CASE ${
    SHAPES.map((shape) =>
      `WHEN ${shape.fragments.map((fragment) => `${a}.query LIKE '%${fragment}%'`).join(" AND ")}${
        shape.pattern === undefined ? "" : ` AND ${a}.query ~ '${shape.pattern}'`
      } THEN '${shape.name}'`
    ).join(" ")
  } WHEN ${a}.backend_type <> 'client backend' THEN ${a}.backend_type ELSE left(regexp_replace(${a}.query, '\\s+', ' ', 'g'), 40) END`

/** The database's cumulative totals per hot statement (sums since the last reset). */
const statementTotals = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ query: string; calls: number; exec: number; plan: number; blocks: number; read: number; readMs: number; fpi: number }>(
    `SELECT query, calls::float8 AS calls, total_exec_time::float8 AS exec, total_plan_time::float8 AS plan,
       (shared_blks_hit + shared_blks_read)::float8 AS blocks, shared_blks_read::float8 AS read,
       shared_blk_read_time::float8 AS "readMs", wal_fpi::float8 AS fpi
     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`
  )
  const byName = new Map<string, { calls: number; exec: number; plan: number; blocks: number; read: number; readMs: number; fpi: number }>()
  for (const row of rows) {
    const name = classify(row.query)
    if (name === undefined) continue
    const entry = byName.get(name) ?? { calls: 0, exec: 0, plan: 0, blocks: 0, read: 0, readMs: 0, fpi: 0 }
    entry.calls += Number(row.calls)
    entry.exec += Number(row.exec)
    entry.plan += Number(row.plan)
    entry.blocks += Number(row.blocks)
    entry.read += Number(row.read)
    entry.readMs += Number(row.readMs)
    entry.fpi += Number(row.fpi)
    byName.set(name, entry)
  }
  return byName
}).pipe(Effect.orDie)

/** Totals as means per call. */
const perCall = (byName: ReadonlyMap<string, { calls: number; exec: number; plan: number; blocks: number; read: number; readMs: number; fpi: number }>) =>
  new Map([...byName].map(([name, e]) => [name, {
    calls: e.calls,
    execMs: round(e.exec / e.calls, 3),
    planMs: round(e.plan / e.calls, 3),
    blocks: round(e.blocks / e.calls, 1),
    read: round(e.read / e.calls, 2),
    readMs: round(e.readMs / e.calls, 3),
    fpi: round(e.fpi / e.calls, 2)
  }]))

const statementStats = Effect.map(statementTotals, perCall)

type Stats = Effect.Success<typeof statementStats>

/** Mean execution ms per hot statement over one chunk: the difference of the totals read before and after it. */
const chunkExecMs = (
  before: Effect.Success<typeof statementTotals>,
  after: Effect.Success<typeof statementTotals>
): ReadonlyMap<string, number> =>
  new Map([...after].flatMap(([name, e]) => {
    const calls = e.calls - (before.get(name)?.calls ?? 0)
    return calls > 0 ? [[name, (e.exec - (before.get(name)?.exec ?? 0)) / calls] as const] : []
  }))

/** Works off the pending prompts of `sessionIds` with the worker's path (start/close) or the legacy one. */
const workOff = (workerId: string, folded: boolean) =>
  Effect.gen(function*() {
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const log = yield* EventLog
    let done = 0
    for (;;) {
      const claimed = yield* leases.claim(workerId, 1, 15_000, 3)
      if (claimed.length === 0) return done
      const lease = claimed[0]!
      for (;;) {
        const next = yield* (folded ? queue.start(lease) : queue.next(lease))
        if (Option.isNone(next)) {
          if (yield* leases.releaseIfIdle(lease)) break
          continue
        }
        const command = next.value
        const owner = { commandId: command.id, attempt: command.attempt }
        const drafts: Array<EventDraft> = [
          { type: "assistant.message", payload: { messageId: `msg_${command.id}`, text: "echo: history", final: true }, ...owner },
          { type: "session.idle", payload: { commandId: command.id, outcome: "acked" }, ...owner }
        ]
        done++
        if (folded) {
          if ((yield* log.close(lease, drafts, { commandId: command.id, outcome: "acked" })).released) break
          continue
        }
        yield* log.append(lease, [{ type: "session.status", payload: { status: "running", commandId: command.id }, ...owner }])
        yield* log.append(lease, drafts, { commandId: command.id, outcome: "acked" })
      }
    }
  })

/** Enqueues and works off `prompts` prompts on each of `sessionIds`: start/close on the first half, legacy on the second. */
const workChunk = (orgId: string, sessionIds: ReadonlyArray<string>, prompts = PROMPTS_PER_SESSION) =>
  Effect.gen(function*() {
    const store = yield* SessionStore
    const half = Math.floor(sessionIds.length / 2)
    for (const [part, folded] of [[sessionIds.slice(0, half), true], [sessionIds.slice(half), false]] as const) {
      yield* Effect.forEach(part, (sessionId) =>
        Effect.forEach(Array.from({ length: prompts }), (_, i) => store.prompt(orgId, sessionId, { text: `p${i}` }), { discard: true }),
        { concurrency: 2 * FIBERS, discard: true }).pipe(Effect.orDie)
      yield* Effect.all(Array.from({ length: FIBERS }, (_, i) => workOff(`w${i}`, folded)), { concurrency: "unbounded" })
    }
  })

/** One database's side of a measured round: its stores, its org, the sessions it works on. */
interface Side {
  readonly services: Context.Context<Layer.Success<ReturnType<typeof servicesFor>>>
  readonly orgId: string
  readonly sessionIds: ReadonlyArray<string>
  /** One connection of its own for the wait sampler (`BENCH_SAMPLE_WAITS=1`). */
  readonly probe: Context.Context<SqlClient.SqlClient>
}

/**
 * The sides' work in chunks of CHUNK_SESSIONS sessions, alternated (A B, B A, …) so both see the same machine: on a
 * shared box the load moves within seconds, and two phases run one after the other compared different loads. The
 * statements' figures come per database from pg_stat_statements (reset once, read per `dbid`); the CPU of every
 * process of the cluster (`postmaster`: backends, autovacuum, WAL writer …) is summed per side over its chunks.
 */
const measure = (sides: ReadonlyArray<Side>, postmaster: number) =>
  Effect.gen(function*() {
    if (ACTIVE) {
      // A turn on every measured session first, unmeasured: the measured prompts then find their session's pages as an
      // ongoing conversation does (cached, already written since the last checkpoint), not as a first touch.
      for (const side of sides) {
        for (let from = 0; from < side.sessionIds.length; from += CHUNK_SESSIONS) {
          yield* workChunk(side.orgId, side.sessionIds.slice(from, from + CHUNK_SESSIONS), 1).pipe(Effect.provide(side.services))
        }
      }
    }
    yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`SELECT pg_stat_statements_reset()`).pipe(Effect.orDie)
    }).pipe(Effect.provide(sides[0]!.services))
    const cpu = sides.map(() => 0)
    const seconds = sides.map(() => 0)
    const waits = sides.map(() => ({ samples: 0, counts: new Map<string, number>() }))
    const chunks = sides.map((): Array<ReadonlyMap<string, number>> => [])
    const totals = yield* Effect.forEach(sides, (side) => statementTotals.pipe(Effect.provide(side.services)))
    const longest = Math.max(...sides.map((side) => side.sessionIds.length))
    for (let from = 0, chunk = 0; from < longest; from += CHUNK_SESSIONS, chunk++) {
      const order = sides.map((_, i) => i)
      if (chunk % 2 === 1) order.reverse()
      for (const i of order) {
        const side = sides[i]!
        const cpuBefore = postgresCpu(postmaster)
        const started = performance.now()
        const work = workChunk(side.orgId, side.sessionIds.slice(from, from + CHUNK_SESSIONS))
        if (SAMPLE_WAITS) {
          // The probe has a connection of its own: from the side's pool it ran only when the workers' statements let a
          // connection go, i.e. when none was running, and saw nothing.
          const sampled = yield* sampleWaits(work.pipe(Effect.provide(side.services)), classifySql).pipe(Effect.provide(side.probe))
          waits[i]!.samples += sampled.samples
          for (const w of sampled.waits) {
            const key = `${w.statement}\u0000${w.wait}\u0000${w.relation}`
            waits[i]!.counts.set(key, (waits[i]!.counts.get(key) ?? 0) + w.backends * sampled.samples)
          }
        } else {
          yield* work.pipe(Effect.provide(side.services))
        }
        cpu[i]! += postgresCpu(postmaster) - cpuBefore
        seconds[i]! += (performance.now() - started) / 1000
        const now = yield* statementTotals.pipe(Effect.provide(side.services))
        chunks[i]!.push(chunkExecMs(totals[i]!, now))
        totals[i] = now
      }
    }
    return yield* Effect.forEach(sides, (side, i) =>
      Effect.map(statementStats.pipe(Effect.provide(side.services)), (stats): Phase => ({
        stats,
        seconds: round(seconds[i]!, 2),
        postgresCpuMs: round(cpu[i]! / (side.sessionIds.length * PROMPTS_PER_SESSION), 3),
        chunks: chunks[i]!,
        waits: SAMPLE_WAITS ? { samples: waits[i]!.samples, waits: meanBackends(waits[i]!) } : undefined
      })))
  })

/** Summed sample counts per (statement, wait, relation) as mean backends over the side's samples, largest first. */
const meanBackends = (w: { samples: number; counts: Map<string, number> }): Array<WaitSample> =>
  [...w.counts].map(([key, n]) => {
    const [statement, wait, relation] = key.split("\u0000") as [string, string, string]
    return { statement, wait, relation, backends: round(n / Math.max(w.samples, 1), 3) }
  }).sort((a, b) => b.backends - a.backends)

const createSessions = (orgId: string, count: number) =>
  Effect.gen(function*() {
    const store = yield* SessionStore
    return yield* Effect.forEach(Array.from({ length: count }), () => Effect.map(store.create(orgId, {}), (s) => s.id), { concurrency: 16 })
  })

const counts = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ commands: number; events: number }>(
    `SELECT (SELECT count(*) FROM cloud_session_commands)::float8 AS commands, (SELECT count(*) FROM cloud_session_events)::float8 AS events`
  ).pipe(Effect.orDie)
  return { commands: Number(rows[0]!.commands), events: Number(rows[0]!.events) }
})

/** History through the real tables: sessions (with projection and lease rows), acked commands, their events. */
const seed = (orgId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const chunk = 500
    const started = performance.now()
    for (let from = 1; from <= HISTORY_SESSIONS; from += chunk) {
      const to = Math.min(HISTORY_SESSIONS, from + chunk - 1)
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(
          `INSERT INTO cloud_sessions (id, org_id, title) SELECT 'ses_hist_' || g, $1, 'history ' || g FROM generate_series($2::int, $3::int) g`,
          [orgId, from, to]
        )
        yield* sql.unsafe(
          `INSERT INTO cloud_session_projections (session_id, org_id, last_sequence, projected_sequence)
           SELECT 'ses_hist_' || g, $1, $4::int * $5::int, $4::int * $5::int FROM generate_series($2::int, $3::int) g`,
          [orgId, from, to, HISTORY_COMMANDS, EVENTS_PER_COMMAND]
        )
        yield* sql.unsafe(`INSERT INTO cloud_worker_leases (session_id) SELECT 'ses_hist_' || g FROM generate_series($1::int, $2::int) g`, [from, to])
        yield* sql.unsafe(
          `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, claimed_epoch, claimed_by, started_at, completed_at)
           SELECT 'cmd_hist_' || g || '_' || k, 'ses_hist_' || g, $1, 'prompt', jsonb_build_object('text', 'history ' || k),
             'acked', 1, 'seed', now(), now()
           FROM generate_series($2::int, $3::int) g, generate_series(1, $4::int) k ORDER BY k, g`,
          [orgId, from, to, HISTORY_COMMANDS]
        )
        yield* sql.unsafe(
          `INSERT INTO cloud_session_events (session_id, sequence, event_id, type, payload, command_id, attempt)
           SELECT 'ses_hist_' || g, (k - 1) * $4::int + e, 'evt_hist_' || g || '_' || k || '_' || e,
             CASE e WHEN 1 THEN 'prompt.submitted' WHEN 2 THEN 'session.status' WHEN $4::int THEN 'session.idle' ELSE 'assistant.message' END,
             jsonb_build_object('commandId', 'cmd_hist_' || g || '_' || k, 'text', 'history event'), 'cmd_hist_' || g || '_' || k, 1
           FROM generate_series($1::int, $2::int) g, generate_series(1, $3::int) k, generate_series(1, $4::int) e`,
          [from, to, HISTORY_COMMANDS, EVENTS_PER_COMMAND]
        )
      })).pipe(Effect.orDie)
      if ((to / chunk) % 4 === 0) console.error(`  seeded ${to} / ${HISTORY_SESSIONS} sessions (${round((performance.now() - started) / 1000)} s)`)
    }
    yield* sql.unsafe(`VACUUM ANALYZE`).pipe(Effect.orDie)
    return { ...(yield* counts), seconds: round((performance.now() - started) / 1000) }
  })

/** One retention pass deleting every acked command and projected event (ages of 1 ms), timed; then VACUUM ANALYZE. */
const retain = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const started = performance.now()
  const totals = yield* retentionPass({ commandsOlderThanMs: 1, eventsOlderThanMs: 1 }, 500)
  const seconds = (performance.now() - started) / 1000
  const vacuumStarted = performance.now()
  yield* sql.unsafe(`VACUUM ANALYZE cloud_session_commands, cloud_session_events, cloud_session_projections`).pipe(Effect.orDie)
  return {
    ...totals,
    seconds: round(seconds, 1),
    rowsPerSecond: Math.round((totals.commandsDeleted + totals.eventsDeleted) / seconds),
    vacuumSeconds: round((performance.now() - vacuumStarted) / 1000, 1)
  }
})

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * The verdict across rounds, per statement: the median of the per-round ratios full / empty with their range, and how
 * many rounds exceed 1.2× — every round counts (none is dropped), the median is what one noisy round cannot move.
 */
const acrossRounds = (rounds: ReadonlyArray<{ empty: Phase; full: Phase }>, names: ReadonlyArray<string>) => {
  const spread = (ratios: ReadonlyArray<number>) =>
    ratios.length === 0
      ? "– | –"
      : `**${round(median(ratios), 2)}×** (${round(Math.min(...ratios), 2)}–${round(Math.max(...ratios), 2)}×) | ${ratios.filter((x) => x > 1.2).length} of ${ratios.length}`
  const quartiles = (ratios: ReadonlyArray<number>) => {
    if (ratios.length === 0) return "– | –"
    const sorted = [...ratios].sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
    return `**${round(median(ratios), 2)}×** (${round(at(0.25), 2)}–${round(at(0.75), 2)}×) | ${ratios.filter((x) => x > 1.2).length} of ${ratios.length}`
  }
  const ratiosOf = (pick: (phase: Phase) => number | undefined) =>
    rounds.flatMap((pair) => {
      const a = pick(pair.empty)
      const b = pick(pair.full)
      return a && b ? [b / a] : []
    })
  // The chunks of a round ran back to back (A B, B A, …): chunk j of one side against chunk j of the other, seconds apart.
  const chunkRatios = (name: string) =>
    rounds.flatMap((pair) =>
      pair.full.chunks.flatMap((full, j) => {
        const a = pair.empty.chunks[j]?.get(name)
        const b = full.get(name)
        return a && b ? [b / a] : []
      })
    )
  return [
    `Across the ${rounds.length} rounds (ratio full / empty of each round): median (min–max), and the rounds above 1.2×; the execution`,
    "time less the time of its reads from outside shared buffers (track_io_timing: the cache's share, not the statement's work); the",
    `execution time per chunk pair (chunk j of the full database against chunk j of the empty one, run back to back: ${CHUNK_SESSIONS} sessions`,
    "each), median (25th–75th percentile) — a burst of the box's load lands in one chunk, not in a whole round:",
    "",
    "| statement | buffers per call | rounds > 1.2× | execution time | rounds > 1.2× | execution time less its reads' time | rounds > 1.2× | execution time, chunk pairs | pairs > 1.2× |",
    "|---|---|---|---|---|---|---|---|---|",
    ...names.map((name) =>
      `| ${name} | ${spread(ratiosOf((phase) => phase.stats.get(name)?.blocks))} | ${spread(ratiosOf((phase) => phase.stats.get(name)?.execMs))} | ${
        spread(ratiosOf((phase) => {
          const stats = phase.stats.get(name)
          return stats === undefined ? undefined : stats.execMs - stats.readMs
        }))
      } | ${quartiles(chunkRatios(name))} |`
    ),
    `| Postgres CPU per command | | | ${spread(ratiosOf((phase) => phase.postgresCpuMs))} | | | | |`
  ]
}

/** `BENCH_SAMPLE_WAITS=1`: per round and database, who waited on what (mean backends over the database's chunks). */
const waitTables = (rounds: ReadonlyArray<{ empty: Phase; full: Phase }>) =>
  rounds.flatMap((pair, i) =>
    (["empty", "full"] as const).flatMap((side) => {
      const waits = pair[side].waits
      return waits === undefined ? [] : [`Waits, round ${i + 1}, ${side} database:`, "", waitsMarkdown(waits.samples, waits.waits), ""]
    })
  )

type Phase = { stats: Stats; seconds: number; postgresCpuMs: number; chunks: ReadonlyArray<ReadonlyMap<string, number>>; waits: { samples: number; waits: ReadonlyArray<WaitSample> } | undefined }

const report = (r: { control: boolean; active: boolean; date: string; commit: string; machine: string; load: string; loadEnd: string; seeded: { commands: number; events: number; seconds: number }; reused: boolean; rounds: ReadonlyArray<{ empty: Phase; full: Phase }>; retained: Effect.Success<typeof retain> | undefined; after: Phase | undefined }) => {
  const names = [...new Set(r.rounds.flatMap((round) => [...round.empty.stats.keys(), ...round.full.stats.keys()]))].sort()
  const ratio = (x?: number, y?: number) => (x && y ? round(y / x, 2) : "–")
  const rows = names.flatMap((name) => [
    ...r.rounds.map((pair, i) => {
      const a = pair.empty.stats.get(name)
      const b = pair.full.stats.get(name)
      return `| ${name} | ${i + 1} | ${a?.calls ?? 0} / ${b?.calls ?? 0} | ${a?.execMs ?? "–"} → ${b?.execMs ?? "–"} (**${ratio(a?.execMs, b?.execMs)}×**) | ${a?.planMs ?? "–"} → ${b?.planMs ?? "–"} | ${a?.blocks ?? "–"} → ${b?.blocks ?? "–"} (**${ratio(a?.blocks, b?.blocks)}×**) | ${a?.read ?? "–"} → ${b?.read ?? "–"} (${a?.readMs ?? "–"} → ${b?.readMs ?? "–"} ms) | ${a?.fpi ?? "–"} → ${b?.fpi ?? "–"} |`
    }),
    ...(r.after === undefined ? [] : (() => {
      const a = r.rounds[0]!.empty.stats.get(name)
      const c = r.after.stats.get(name)
      return [`| ${name} | after retention | ${a?.calls ?? 0} / ${c?.calls ?? 0} | ${a?.execMs ?? "–"} → ${c?.execMs ?? "–"} (${ratio(a?.execMs, c?.execMs)}×) | ${a?.planMs ?? "–"} → ${c?.planMs ?? "–"} | ${a?.blocks ?? "–"} → ${c?.blocks ?? "–"} (${ratio(a?.blocks, c?.blocks)}×) | ${a?.read ?? "–"} → ${c?.read ?? "–"} | ${a?.fpi ?? "–"} → ${c?.fpi ?? "–"} |`]
    })())
  ])
  const seeding = r.reused
    ? `${r.seeded.commands.toLocaleString("en")} commands and ${r.seeded.events.toLocaleString("en")} events (a kept cluster seeded by an earlier run, BENCH_HISTORY_DIR; ANALYZE at start)`
    : `${r.seeded.commands.toLocaleString("en")} commands (acked but the measured ones) and ${r.seeded.events.toLocaleString("en")} events over ${HISTORY_SESSIONS.toLocaleString("en")} sessions in ${r.seeded.seconds} s, then VACUUM ANALYZE`
  return [
    `## ${r.date} — \`npm run bench:history\``,
    "",
    `Commit ${r.commit}; ${r.machine}; load average at start ${r.load}, at end ${r.loadEnd}. Embedded Postgres 18 (fsync on).`,
    `Seeded through the real tables: ${seeding}. Each round measures ${MEASURED_SESSIONS} sessions × ${PROMPTS_PER_SESSION} prompts`,
    `on the empty database (fresh sessions) and on the full one (seeded sessions — ${HISTORY_COMMANDS} acked commands each — no earlier`,
    `round measured), alternated every ${CHUNK_SESSIONS} sessions (both see the same load); in each chunk, half worked off through start/close, half through`,
    `next/append/releaseIfIdle, ${FIBERS} fibers (${2 * FIBERS} prompts enqueued at a time).`,
    ...(r.control ? ["**Control run (BENCH_HISTORY_CONTROL=1): the \"full\" column is a second empty database** — the ratios' spread when the sides differ in nothing but the moment."] : []),
    ...(r.active ? ["BENCH_HISTORY_ACTIVE=1: every measured session (both sides) had one unmeasured turn just before its round — an ongoing conversation, not a first touch."] : []),
    "Per statement (pg_stat_statements): mean execution and planning ms (planning is 0 unless track_planning is on: the",
    "client's prepared statements mostly reuse their plans), and shared buffers touched per call (the work, independent of",
    "the load); ratios full / empty of the same round. WAL full-page images per call: a page's first change after a",
    "checkpoint writes the whole page to the WAL — the cost of touching many distinct (cold) pages, part of the time.",
    "",
    "| statement | round | calls empty / full | exec ms empty → full | plan ms empty → full | buffers per call empty → full | of which read (not in shared buffers; their read time with track_io_timing) | WAL full-page images per call |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    ...acrossRounds(r.rounds, names),
    "",
    ...waitTables(r.rounds),
    "Postgres CPU per command (every process of the cluster, /proc utime + stime over the phase; 1 command = its enqueue,",
    "claim share, start or next, appends, close or ack, release):",
    "",
    "| round | empty ms | full ms | full / empty |",
    "|---|---|---|---|",
    ...r.rounds.map((pair, i) => `| ${i + 1} | ${pair.empty.postgresCpuMs} | ${pair.full.postgresCpuMs} | **${round(pair.full.postgresCpuMs / pair.empty.postgresCpuMs, 2)}×** |`),
    ...(r.after === undefined ? [] : [`| after retention | ${r.rounds[0]!.empty.postgresCpuMs} | ${r.after.postgresCpuMs} | ${round(r.after.postgresCpuMs / r.rounds[0]!.empty.postgresCpuMs, 2)}× |`]),
    "",
    ...(r.retained === undefined ? ["No retention pass in this run (a kept cluster keeps its history)."] : [
      `Retention pass (ages of 1 ms: every acked command, every projected event; ${r.retained.batches} batches of 500 sessions):`,
      `${r.retained.commandsDeleted.toLocaleString("en")} commands and ${r.retained.eventsDeleted.toLocaleString("en")} events deleted in ${r.retained.seconds} s`,
      `(**${r.retained.rowsPerSecond.toLocaleString("en")} rows/s**), then VACUUM ANALYZE of the three tables in ${r.retained.vacuumSeconds} s.`
    ]),
    ""
  ].join("\n")
}

/** The bench's stores on one database of the cluster. */
const servicesFor = (url: string) =>
  Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgSessionStore.layer, PgTokens.layer, PgRetention.layer).pipe(
    Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: FIBERS + 4, applicationName: "bench-history" }))
  )

/** Migrations, pg_stat_statements and the bench's org (created once, found again in a kept database). */
const prepare = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* runMigrations.pipe(Effect.orDie)
  yield* sql.unsafe(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).pipe(Effect.orDie)

  const existing = yield* sql.unsafe<{ org_id: string }>(`SELECT org_id FROM cloud_sessions WHERE id = 'ses_hist_1'`).pipe(Effect.orDie)
  if (existing[0] !== undefined) return { orgId: existing[0].org_id, seeded: true }
  const { orgId } = yield* (yield* Tokens).createOrg("history")
  return { orgId, seeded: false }
})

/**
 * BENCH_HISTORY_DIR keeps the cluster (and its seeded `history` database) in that directory across runs, so a
 * re-measurement skips the ~200 s seeding: the empty database is recreated each run, the full phase measures seeded
 * sessions no earlier round measured (a counter in the directory), and the retention phase, which deletes the
 * history, runs only with BENCH_HISTORY_RETENTION=1. BENCH_HISTORY_ROUNDS (6) alternates empty / full rounds in one
 * run, so each ratio compares two phases measured back to back, after an unreported warm-up of both.
 */
const main = Effect.gen(function*() {
  const host = machineOf()
  const machine = `${host.os}, ${host.cpus}, ${host.memory}, Node ${host.node}`
  const load = host.loadAverage
  const keptDir = process.env.BENCH_HISTORY_DIR
  const rounds = envInt("BENCH_HISTORY_ROUNDS", 6)
  const dataDir = keptDir === undefined ? Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-bench-history-")) : Path.resolve(keptDir)
  Fs.mkdirSync(dataDir, { recursive: true })
  Fs.chmodSync(dataDir, 0o755)
  if (keptDir === undefined) yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
  const runRetention = !CONTROL && (keptDir === undefined || process.env.BENCH_HISTORY_RETENTION === "1")
  const cluster = yield* startEmbeddedPostgres(Path.join(dataDir, "postgres"))
  const postmaster = Number(Fs.readFileSync(Path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0])
  const admin = cluster.url("postgres")
  yield* Database.ensureDatabase(admin, "history")
  // The empty database: recreated on every run (a kept cluster keeps only the seeded one).
  yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`DROP DATABASE IF EXISTS history_empty WITH (FORCE)`)
    yield* sql.unsafe(`DROP DATABASE IF EXISTS history_control WITH (FORCE)`)
  }).pipe(Effect.provide(Database.layer({ url: Redacted.make(admin), maxConnections: 1, applicationName: "bench-history" })), Effect.orDie)
  yield* Database.ensureDatabase(admin, "history_empty")
  if (CONTROL) yield* Database.ensureDatabase(admin, "history_control")
  // The time of the reads from outside shared buffers, per statement (pg_stat_statements' shared_blk_read_time), on
  // both databases alike (the clock is read twice per read); set before their pools connect.
  yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const name of ["history", "history_empty", ...(CONTROL ? ["history_control"] : [])]) {
      yield* sql.unsafe(`ALTER DATABASE ${name} SET track_io_timing = on`)
    }
  }).pipe(Effect.provide(Database.layer({ url: Redacted.make(admin), maxConnections: 1, applicationName: "bench-history" })), Effect.orDie)
  const emptyDb = yield* Layer.build(servicesFor(cluster.url("history_empty")))
  const fullDb = yield* Layer.build(servicesFor(cluster.url("history")))
  const probeOf = (name: string) =>
    Layer.build(Database.layer({ url: Redacted.make(cluster.url(name)), maxConnections: 1, applicationName: "bench-history-probe" }))
  const emptyProbe = yield* probeOf("history_empty")
  const fullProbe = yield* probeOf("history")
  const { orgId: emptyOrg } = yield* prepare.pipe(Effect.provide(emptyDb))
  const { orgId, seeded: alreadySeeded } = yield* prepare.pipe(Effect.provide(fullDb))
  const seeded = yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (!alreadySeeded) {
      console.error(`seeding ${HISTORY_SESSIONS} sessions × ${HISTORY_COMMANDS} commands × ${EVENTS_PER_COMMAND} events …`)
      return yield* seed(orgId)
    }
    yield* sql.unsafe(`ANALYZE`).pipe(Effect.orDie)
    return { ...(yield* counts), seconds: 0 }
  }).pipe(Effect.provide(fullDb))
  console.error(`seeded ${JSON.stringify(seeded)}`)
  const step = Math.floor(HISTORY_SESSIONS / MEASURED_SESSIONS)
  // Each full phase measures seeded sessions no earlier one measured: offsets 1, 2, … of every step-th session.
  const counterFile = Path.join(dataDir, "measured-phases")
  let used = Fs.existsSync(counterFile) ? Number(Fs.readFileSync(counterFile, "utf8")) : 0
  const nextSeeded = () => {
    const offset = 1 + (used++ % (step - 1))
    Fs.writeFileSync(counterFile, String(used))
    return Array.from({ length: MEASURED_SESSIONS }, (_, i) => `ses_hist_${offset + i * step}`)
  }
  // A warm-up on both databases, not reported: the first phase of a run otherwise pays the cold caches and the
  // connections' first plans (its execution times were 1.5–2.5× the later phases').
  console.error("warm-up …")
  const emptySessions = (count: number) => createSessions(emptyOrg, count).pipe(Effect.provide(emptyDb))
  // BENCH_HISTORY_CONTROL=1: the "full" side is a second empty database (fresh sessions) — what the ratios spread to
  // when nothing differs between the sides but the moment (the box's noise).
  const control = CONTROL
    ? yield* Effect.gen(function*() {
      const services = yield* Layer.build(servicesFor(cluster.url("history_control")))
      const { orgId: controlOrg } = yield* prepare.pipe(Effect.provide(services))
      return { services, probe: yield* probeOf("history_control"), orgId: controlOrg }
    })
    : undefined
  const fullSide = (count: number) =>
    control === undefined
      ? Effect.succeed<Side>({ services: fullDb, probe: fullProbe, orgId, sessionIds: nextSeeded().slice(0, count) })
      : Effect.map(createSessions(control.orgId, count).pipe(Effect.provide(control.services)), (sessionIds): Side => ({ ...control, sessionIds }))
  yield* measure([
    { services: emptyDb, probe: emptyProbe, orgId: emptyOrg, sessionIds: yield* emptySessions(MEASURED_SESSIONS / 4) },
    yield* fullSide(MEASURED_SESSIONS / 4)
  ], postmaster)
  const measured: Array<{ empty: Phase; full: Phase }> = []
  for (let i = 0; i < rounds; i++) {
    console.error(`round ${i + 1}: empty and full database, alternated every ${CHUNK_SESSIONS} sessions …`)
    const [empty, full] = yield* measure([
      { services: emptyDb, probe: emptyProbe, orgId: emptyOrg, sessionIds: yield* emptySessions(MEASURED_SESSIONS) },
      yield* fullSide(MEASURED_SESSIONS)
    ], postmaster)
    measured.push({ empty: empty!, full: full! })
  }
  let retained: Effect.Success<typeof retain> | undefined
  let after: Phase | undefined
  if (runRetention) {
    console.error("retention pass …")
    retained = yield* retain.pipe(Effect.provide(fullDb))
    console.error(`retained ${JSON.stringify(retained)}; after retention …`)
    after = (yield* measure([{ services: fullDb, probe: fullProbe, orgId, sessionIds: nextSeeded() }], postmaster))[0]
  }
  const markdown = report({ control: CONTROL, active: ACTIVE, date: new Date().toISOString(), commit: gitHead(), machine, load, loadEnd: machineOf().loadAverage, seeded, reused: alreadySeeded, rounds: measured, retained, after })
  console.log(markdown)
  if (process.env.BENCH_NO_APPEND !== "1") Fs.appendFileSync(Path.join(repoRoot, "docs/benchmarks.md"), `\n${markdown}\n`)
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
