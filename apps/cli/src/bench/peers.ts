/**
 * `npm run bench:peers`: our pipeline and two peers in ONE run, back to back, on one embedded Postgres (fsync on):
 *
 * 1. ours, checkpoints off: `cowork up` (web + worker, scripted runtime) as a child process; a backlog of prompts
 *    POSTed over HTTP (64 in flight) while the worker drains them: commands/s first POST → last ack; then the
 *    open-loop latency phase (50 prompts/s over 50 sessions, every prompt timed even when its session is busy);
 * 2. ours, checkpoints on: the same;
 * 3. graphile-worker (pinned devDependency, its own `graphile_worker` schema in the same database): the same number
 *    of no-op jobs added one by one (64 in flight) while a runner of the same concurrency works them off;
 * 4. ceiling: our fenced statements alone (claim → next → one append carrying the ack → release), no HTTP, no runtime.
 *
 * For each: CPU per 1,000 commands (node and every Postgres process, from /proc utime+stime; exited backends through
 * the postmaster's cutime/cstime), statements and round trips per command (pg_stat_statements calls; round trips
 * count BEGIN/COMMIT too; the benchmark's own probes are tagged and left out), commits (pg_stat_database
 * xact_commit, less our probes) and WAL fsyncs (pg_stat_io, object `wal`) per command. Load average before and after
 * each phase. Prints JSON and a markdown section, appended to docs/benchmarks.md.
 *
 * Knobs: BENCH_ORDER (grouped | interleaved: the backlog's prompts per session back to back, or round robin), BENCH_COMMANDS (2000), BENCH_CONCURRENCY (16 worker fibers / graphile concurrency / ceiling fibers),
 * BENCH_LATENCY_SECONDS (10), BENCH_NO_APPEND=1 (print only), BENCH_LABEL (a note for the heading),
 * BENCH_PEERS_ONLY_OFF=1 (only phase 1, ours with checkpoints off, printed as JSON: for before/after pairs of the node
 * side; implies no append), BENCH_SAMPLE_WAITS=1 (sample pg_stat_activity + pg_locks during our drains: who waits on
 * which relation's rows, behind which statement; the sampling costs Postgres CPU, so such a run is for attribution,
 * not for CPU figures).
 */
import { Database, PgCommandQueue, PgEventLog, PgLeaseStore } from "@cowork/postgres"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { openSse } from "@cowork/client"
import { Logger as GraphileLogger, makeWorkerUtils, run as runGraphile } from "graphile-worker"
import { cpuOf, postgresCpu } from "./procCpu.ts"
import { benchCluster, ceilingWorker, createSessions, envInt, percentile, pool, prompt, round, sleep, type Stack, startStack, stopStack } from "./stack.ts"
import { sampleWaits, waitsMarkdown } from "./waitSampler.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const COMMANDS = envInt("BENCH_COMMANDS", 2000)
const CONCURRENCY = envInt("BENCH_CONCURRENCY", 16)
const LATENCY_SECONDS = envInt("BENCH_LATENCY_SECONDS", 10)
/**
 * `grouped` (default, as every earlier run): each session's prompts back to back, so the 64 in flight fall on a few
 * sessions at a time and contend for their rows; `interleaved`: round robin over the sessions.
 */
const ORDER = process.env.BENCH_ORDER === "interleaved" ? "interleaved" : "grouped"
const LATENCY_RATE = 50
const LATENCY_SESSIONS = 50
const SESSIONS = 200
const IN_FLIGHT = 64
const PROMPT = "[[events:3]] benchmark prompt"
/** Every query of the benchmark's own carries this tag (after its first keyword: pg_stat_statements drops leading comments); the counters leave them out. */
const PROBE = "/* bench-probe */"

// ---------------------------------------------------------------------------------------------------------------
// Counters

interface Counters {
  readonly byQuery: ReadonlyMap<string, { readonly query: string; readonly calls: number; readonly execMs: number; readonly planMs: number }>
  readonly at: number
  readonly nodeMs: number
  readonly postgresMs: number
  /** The CPU of the backends listening for notifications (woken by every NOTIFY commit of the database). */
  readonly listenMs: number
  /** CPU ms by kind of Postgres process: client backends (listening or not), background processes by type. */
  readonly byKind: ReadonlyMap<string, number>
  readonly statements: number
  readonly roundTrips: number
  readonly commits: number
  readonly walFsyncs: number
}

let probes = 0

const readCounters = (postmaster: number, nodeCpu: () => number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Backends flush their statistics at most once a second when idle: wait for it, then take a fresh snapshot.
    yield* Effect.sleep(1_200)
    probes += 5
    yield* sql.unsafe(`SELECT ${PROBE} pg_stat_clear_snapshot()`)
    const calls = yield* sql.unsafe<{ statements: number; round_trips: number }>(
      `SELECT ${PROBE}
         coalesce(sum(calls) FILTER (WHERE query !~* '^\\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|SAVEPOINT|RELEASE)'), 0)::float8 AS statements,
         coalesce(sum(calls), 0)::float8 AS round_trips
       FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND query NOT LIKE '%bench-probe%'`
    )
    const xacts = yield* sql.unsafe<{ commits: number }>(
      `SELECT ${PROBE} xact_commit::float8 AS commits FROM pg_stat_database WHERE datname = current_database()`
    )
    const wal = yield* sql.unsafe<{ fsyncs: number }>(
      `SELECT ${PROBE} coalesce(sum(fsyncs), 0)::float8 AS fsyncs FROM pg_stat_io WHERE object = 'wal'`
    )
    const rows = yield* sql.unsafe<{ queryid: string; query: string; calls: number; exec_ms: number; plan_ms: number }>(
      `SELECT ${PROBE} queryid::text AS queryid, left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query, calls::float8 AS calls,
         total_exec_time::float8 AS exec_ms, total_plan_time::float8 AS plan_ms
       FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%bench-probe%'`
    )
    const listeners = yield* sql.unsafe<{ pid: number }>(
      `SELECT ${PROBE} pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
    )
    const processes = yield* sql.unsafe<{ pid: number; kind: string }>(
      `SELECT ${PROBE} pid, CASE WHEN backend_type <> 'client backend' THEN backend_type
         WHEN query ILIKE 'LISTEN%' THEN 'client backend (listening)' ELSE 'client backend' END AS kind
       FROM pg_stat_activity`
    )
    const byKind = new Map<string, number>([["postmaster + exited processes", cpuOf(postmaster, true)]])
    for (const row of processes) byKind.set(row.kind, (byKind.get(row.kind) ?? 0) + cpuOf(Number(row.pid), false))
    return {
      byKind,
      listenMs: listeners.reduce((total, row) => total + cpuOf(Number(row.pid), false), 0),
      byQuery: new Map(rows.map((r) => [r.queryid, { query: r.query, calls: Number(r.calls), execMs: Number(r.exec_ms), planMs: Number(r.plan_ms) }])),
      at: performance.now(),
      nodeMs: nodeCpu(),
      postgresMs: postgresCpu(postmaster),
      statements: Number(calls[0]!.statements),
      roundTrips: Number(calls[0]!.round_trips),
      commits: Number(xacts[0]!.commits) - probes,
      walFsyncs: Number(wal[0]!.fsyncs)
    } satisfies Counters
  }).pipe(Effect.orDie)

/**
 * The statements that ran most between two samples, per command, with their mean execution and planning time per
 * call (pg_stat_statements; planning is tracked because the bench turns `track_planning` on).
 */
const topStatements = (before: Counters, after: Counters, commands: number) =>
  [...after.byQuery.entries()]
    .map(([id, a]) => {
      const b = before.byQuery.get(id)
      const calls = a.calls - (b?.calls ?? 0)
      return {
        query: a.query,
        perCommand: round(calls / commands, 2),
        execMsPerCall: round((a.execMs - (b?.execMs ?? 0)) / Math.max(calls, 1), 3),
        planMsPerCall: round((a.planMs - (b?.planMs ?? 0)) / Math.max(calls, 1), 3)
      }
    })
    .filter((q) => q.perCommand >= 0.05)
    .sort((x, y) => y.perCommand - x.perCommand)

const perCommand = (before: Counters, after: Counters, commands: number) => ({
  nodeCpuMs: round((after.nodeMs - before.nodeMs) / commands, 2),
  postgresCpuMs: round((after.postgresMs - before.postgresMs) / commands, 2),
  listenCpuMs: round((after.listenMs - before.listenMs) / commands, 3),
  // A backend that exited in between moves into "postmaster + exited processes"; one that started counts from zero.
  postgresCpuMsByKind: Object.fromEntries([...after.byKind].map(([kind, ms]) => [kind, round((ms - (before.byKind.get(kind) ?? 0)) / commands, 3)])),
  statements: round((after.statements - before.statements) / commands, 2),
  roundTrips: round((after.roundTrips - before.roundTrips) / commands, 2),
  commits: round((after.commits - before.commits) / commands, 2),
  walFsyncs: round((after.walFsyncs - before.walFsyncs) / commands, 2)
})

const loadAverage = () => Os.loadavg().map((n) => round(n, 2)).join(" / ")

// ---------------------------------------------------------------------------------------------------------------
// Ours

/**
 * The phase's commands still open (pending or running), polled while the worker drains: a probe of the small
 * open-commands index, not a count of every acked command so far (that read grew with the run and its Postgres CPU
 * was counted as ours). The acked total is read once, at the end.
 */
const countOpen = (sessions: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    probes++
    const rows = yield* sql.unsafe<{ n: number }>(
      `SELECT ${PROBE} count(*)::int AS n FROM cloud_session_commands
       WHERE session_id = ANY($1::text[]) AND status IN ('pending', 'running')`,
      [sessions]
    )
    return Number(rows[0]!.n)
  }).pipe(Effect.orDie)

const countAcked = (sessions: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    probes++
    const rows = yield* sql.unsafe<{ n: number }>(
      `SELECT ${PROBE} count(*)::int AS n FROM cloud_session_commands WHERE session_id = ANY($1::text[]) AND status = 'acked'`,
      [sessions]
    )
    return Number(rows[0]!.n)
  }).pipe(Effect.orDie)

const drainOurs = (stack: Stack, sessions: ReadonlyArray<string>, commands: number) =>
  Effect.gen(function*() {
    const perSession = Math.ceil(commands / sessions.length)
    const jobs = ORDER === "grouped"
      ? sessions.flatMap((sessionId) => Array.from({ length: perSession }, () => sessionId))
      : Array.from({ length: perSession }, () => sessions).flat()
    const started = performance.now()
    let enqueuedAll = false
    const enqueued = Effect.runPromise(Effect.promise(() =>
      pool(jobs, IN_FLIGHT, (sessionId) => prompt(stack, sessionId, PROMPT)).then(() => {
        enqueuedAll = true
      })
    ))
    const deadline = Date.now() + 600_000
    while (Date.now() < deadline) {
      yield* Effect.sleep(50)
      if (enqueuedAll && (yield* countOpen(sessions)) === 0) break
    }
    const seconds = (performance.now() - started) / 1000
    yield* Effect.promise(() => enqueued)
    const acked = yield* countAcked(sessions)
    return { commands: jobs.length, acked, seconds: round(seconds, 2), perSecond: round(acked / seconds) }
  })

/** Open loop: prompt i goes to session i mod 50 at i / 50 s whatever that session is doing; matched by command id. */
const latencyOpenLoop = async (stack: Stack) => {
  const sessions = await createSessions(stack, LATENCY_SESSIONS, "latency")
  const controller = new AbortController()
  interface Timing { sentAt?: number; accepted?: number; firstEvent?: number; idle?: number }
  const timings = new Map<string, Timing>()
  const timing = (commandId: string) => {
    let t = timings.get(commandId)
    if (t === undefined) timings.set(commandId, (t = {}))
    return t
  }
  await Promise.all(sessions.map((sessionId) =>
    openSse(`${stack.baseUrl}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${stack.token}` }, controller.signal, (frame) => {
      if (frame.event === "" || frame.event === "prompt.submitted") return
      const now = performance.now()
      let commandId: unknown
      try {
        commandId = (JSON.parse(frame.data) as { payload?: { commandId?: unknown } }).payload?.commandId
      } catch {
        return
      }
      if (typeof commandId !== "string") return
      const t = timing(commandId)
      t.firstEvent ??= now
      if (frame.event === "session.idle") t.idle ??= now
    })))
  const send = async (sessionId: string) => {
    const sentAt = performance.now()
    const { commandId } = await prompt(stack, sessionId, PROMPT)
    const t = timing(commandId)
    t.sentAt = sentAt
    t.accepted = performance.now()
    return commandId
  }
  // Warm-up, not measured.
  const warm = await Promise.all(sessions.map(send))
  const warmDeadline = Date.now() + 30_000
  while (warm.some((id) => timings.get(id)?.idle === undefined) && Date.now() < warmDeadline) await sleep(20)

  const total = LATENCY_RATE * LATENCY_SECONDS
  const interval = 1000 / LATENCY_RATE
  const started = performance.now()
  const sent: Array<Promise<string>> = []
  for (let i = 0; i < total; i++) {
    await sleep(started + i * interval - performance.now())
    sent.push(send(sessions[i % sessions.length]!))
  }
  const sendSeconds = (performance.now() - started) / 1000
  const ids = await Promise.all(sent)
  const deadline = Date.now() + 60_000
  while (ids.some((id) => timings.get(id)?.idle === undefined) && Date.now() < deadline) await sleep(20)
  controller.abort()
  const measured = ids.map((id) => timings.get(id)!).filter((t) => t.firstEvent !== undefined && t.sentAt !== undefined)
  const firstEvent = measured.map((t) => t.firstEvent! - t.sentAt!)
  const idle = measured.filter((t) => t.idle !== undefined).map((t) => t.idle! - t.sentAt!)
  const accepted = measured.map((t) => t.accepted! - t.sentAt!)
  const stat = (values: ReadonlyArray<number>) => ({
    p50: round(percentile(values, 50)),
    p99: round(percentile(values, 99)),
    max: round(values.length === 0 ? Number.NaN : Math.max(...values))
  })
  return {
    prompts: total,
    measured: measured.length,
    offeredPerSecond: round(total / sendSeconds),
    firstEvent: stat(firstEvent),
    idle: stat(idle),
    accepted: stat(accepted)
  }
}

const runOurs = (url: string, dataDir: string, postmaster: number, label: string, env: Record<string, string>, token?: string) =>
  Effect.gen(function*() {
    const loadBefore = loadAverage()
    const stack = yield* Effect.promise(() =>
      startStack({ databaseUrl: url, dataDir, workerConcurrency: CONCURRENCY, extraEnv: env, knownToken: token }))
    const nodeCpu = () => cpuOf(stack.child.pid!, true)
    // Warm-up: JIT, pools, plans; not measured.
    const warmSessions = yield* Effect.promise(() => createSessions(stack, 50, `warm${label}`))
    yield* drainOurs(stack, warmSessions, 200)
    const sessions = yield* Effect.promise(() => createSessions(stack, SESSIONS, label))
    const before = yield* readCounters(postmaster, nodeCpu)
    const throughput = process.env.BENCH_SAMPLE_WAITS === "1"
      ? yield* Effect.map(sampleWaits(drainOurs(stack, sessions, COMMANDS)), ({ result, samples, waits }) => {
        console.error(`waits during the drain (${label}):\n${waitsMarkdown(samples, waits)}`)
        return result
      })
      : yield* drainOurs(stack, sessions, COMMANDS)
    const after = yield* readCounters(postmaster, nodeCpu)
    const latency = yield* Effect.promise(() => latencyOpenLoop(stack))
    yield* stopStack(stack)
    return {
      stack,
      result: { throughput, perCommand: perCommand(before, after, throughput.acked), top: topStatements(before, after, throughput.acked), latency, loadBefore, loadAfter: loadAverage() }
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// graphile-worker

const runGraphileWorker = (url: string, postmaster: number) =>
  Effect.gen(function*() {
    const loadBefore = loadAverage()
    const logger = new GraphileLogger(() => () => {})
    const utils = yield* Effect.promise(() => makeWorkerUtils({ connectionString: url, logger }))
    yield* Effect.promise(() => utils.migrate())
    let done = 0
    let target = Number.POSITIVE_INFINITY
    let finished: () => void = () => {}
    const allDone = new Promise<void>((resolve) => (finished = resolve))
    const runner = yield* Effect.promise(() =>
      runGraphile({
        connectionString: url,
        concurrency: CONCURRENCY,
        noHandleSignals: true,
        pollInterval: 2_000,
        logger,
        taskList: {
          bench: async () => {
            if (++done >= target) finished()
          }
        }
      })
    )
    const addAll = (n: number) =>
      pool(Array.from({ length: n }, (_, i) => i), IN_FLIGHT, (i) => utils.addJob("bench", { i }, { queueName: `q${i % SESSIONS}` }))
    // Warm-up.
    target = 200
    yield* Effect.promise(() => addAll(200).then(() => allDone))
    done = 0
    target = COMMANDS
    const allDone2 = new Promise<void>((resolve) => (finished = resolve))
    const nodeCpu = () => cpuOf(process.pid, false)
    const before = yield* readCounters(postmaster, nodeCpu)
    const started = performance.now()
    yield* Effect.promise(() => Promise.all([addAll(COMMANDS), allDone2]))
    const seconds = (performance.now() - started) / 1000
    const after = yield* readCounters(postmaster, nodeCpu)
    yield* Effect.promise(() => runner.stop())
    yield* Effect.promise(async () => utils.release())
    return {
      throughput: { commands: COMMANDS, acked: done, seconds: round(seconds, 2), perSecond: round(done / seconds) },
      perCommand: perCommand(before, after, done),
      top: topStatements(before, after, done),
      loadBefore,
      loadAfter: loadAverage()
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// Ceiling: our fenced statements alone

const seedBacklog = (sessions: number, perSession: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    probes++
    yield* sql.unsafe(
      `WITH ${PROBE} o AS (SELECT id FROM cloud_orgs ORDER BY created_at LIMIT 1), s AS (
         INSERT INTO cloud_sessions (id, org_id, title)
         SELECT 'ses_ceiling_' || g, o.id, 'ceiling-' || g FROM generate_series(1, $1) g, o RETURNING id, org_id
       ), p AS (
         INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) SELECT id, org_id, 0 FROM s RETURNING session_id, org_id
       ), l AS (
         INSERT INTO cloud_worker_leases (session_id) SELECT session_id FROM p RETURNING session_id
       )
       INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
       SELECT 'cmd_ceiling_' || l.session_id || '_' || k, l.session_id, o.id, 'prompt', '{"text":"ceiling"}'::jsonb
       FROM l, o, generate_series(1, $2) k ORDER BY l.session_id, k`,
      [sessions, perSession]
    )
  }).pipe(Effect.orDie)

const runCeiling = (postmaster: number) =>
  Effect.gen(function*() {
    const loadBefore = loadAverage()
    const perSession = Math.ceil(COMMANDS / SESSIONS)
    yield* seedBacklog(SESSIONS, perSession)
    const fiber = ceilingWorker
    const nodeCpu = () => cpuOf(process.pid, false)
    const before = yield* readCounters(postmaster, nodeCpu)
    const started = performance.now()
    const counts = yield* Effect.all(Array.from({ length: CONCURRENCY }, (_, i) => fiber(`ceiling-${i}`)), { concurrency: "unbounded" })
    const seconds = (performance.now() - started) / 1000
    const total = counts.reduce((a, b) => a + b, 0)
    const after = yield* readCounters(postmaster, nodeCpu)
    return {
      throughput: { commands: total, acked: total, seconds: round(seconds, 2), perSecond: round(total / seconds) },
      perCommand: perCommand(before, after, total),
      top: topStatements(before, after, total),
      loadBefore,
      loadAfter: loadAverage()
    }
  }).pipe(Effect.orDie)

// ---------------------------------------------------------------------------------------------------------------

const gitCommit = () => {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT
  try {
    return ChildProcess.execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

type PhaseResult = {
  readonly throughput: { readonly commands: number; readonly acked: number; readonly seconds: number; readonly perSecond: number }
  readonly perCommand: ReturnType<typeof perCommand>
  readonly loadBefore: string
  readonly loadAfter: string
}

const report = (results: {
  readonly date: string
  readonly commit: string
  readonly machine: string
  readonly off: PhaseResult & { readonly top: ReturnType<typeof topStatements> } & { readonly latency: Awaited<ReturnType<typeof latencyOpenLoop>> }
  readonly on: PhaseResult & { readonly latency: Awaited<ReturnType<typeof latencyOpenLoop>> }
  readonly graphile: PhaseResult
  readonly ceiling: PhaseResult
}) => {
  const { off, on, graphile, ceiling } = results
  const row = (name: string, r: PhaseResult) => {
    const c = r.perCommand
    return `| ${name} | ${r.throughput.perSecond} /s (${r.throughput.acked} in ${r.throughput.seconds} s) | ${c.nodeCpuMs} | ${c.postgresCpuMs} | ${round(c.nodeCpuMs + c.postgresCpuMs, 2)} | ${c.statements} | ${c.commits} | ${c.walFsyncs} | ${r.loadBefore} → ${r.loadAfter} |`
  }
  const latencyRow = (name: string, l: Awaited<ReturnType<typeof latencyOpenLoop>>) =>
    `| ${name} | ${l.offeredPerSecond} /s, ${l.measured} of ${l.prompts} timed | ${l.firstEvent.p50} / ${l.firstEvent.p99} / ${l.firstEvent.max} | ${l.idle.p50} / ${l.idle.p99} | ${l.accepted.p50} / ${l.accepted.p99} |`
  return [
    `## ${results.date} — \`npm run bench:peers\`${process.env.BENCH_LABEL ? ` (${process.env.BENCH_LABEL})` : ""}`,
    "",
    `Commit ${results.commit}; ${results.machine}. One embedded Postgres 18 (fsync on), ${COMMANDS} commands per phase over`,
    `${SESSIONS} sessions / queues (${ORDER}), ${IN_FLIGHT} enqueues in flight, concurrency ${CONCURRENCY} (worker fibers, graphile-worker`,
    "concurrency, ceiling fibers). Ours: `cowork up` child process, scripted runtime, prompt `" + PROMPT + "`; its node CPU",
    "is that child (web + worker); graphile-worker and the ceiling run in the benchmark process (node CPU = this process,",
    "enqueueing included). Statements: pg_stat_statements calls, which miss BEGIN/COMMIT run as prepared statements, so",
    "round trips = statements + 2 per explicit transaction. Transactions: pg_stat_database xact_commit (read-only ones",
    "included); WAL fsyncs: pg_stat_io (object wal) — the durable commits. Our probes are left out of all three.",
    "",
    "| per command | throughput | CPU ms node | CPU ms Postgres | CPU ms total | statements | transactions | WAL fsyncs | load before → after |",
    "|---|---|---|---|---|---|---|---|---|",
    row("ours, checkpoints off", off),
    row("ours, checkpoints on", on),
    row("graphile-worker 0.18.0 (no-op task)", graphile),
    row("ceiling: our fenced SQL alone", ceiling),
    "",
    "| ratio (same run) | checkpoints off | checkpoints on |",
    "|---|---|---|",
    `| ours / graphile-worker | ${round(off.throughput.perSecond / graphile.throughput.perSecond, 3)} | ${round(on.throughput.perSecond / graphile.throughput.perSecond, 3)} |`,
    `| ours / ceiling | ${round(off.throughput.perSecond / ceiling.throughput.perSecond, 3)} | ${round(on.throughput.perSecond / ceiling.throughput.perSecond, 3)} |`,
    "",
    "| open-loop latency, 50 prompts/s over 50 sessions | offered | prompt → first worker SSE event p50 / p99 / max ms | prompt → session.idle p50 / p99 ms | POST → 202 p50 / p99 ms |",
    "|---|---|---|---|---|",
    latencyRow("checkpoints off", off.latency),
    latencyRow("checkpoints on", on.latency),
    "",
    "Statements per command, ours with checkpoints off (pg_stat_statements calls in the measured window / commands):",
    "",
    "| calls per command | execution ms per call | planning ms per call | statement |",
    "|---|---|---|---|",
    ...off.top.slice(0, 14).map((q) =>
      `| ${q.perCommand} | ${q.execMsPerCall} | ${q.planMsPerCall} | \`${q.query.replaceAll("|", "\\|").replaceAll("`", "'")}\` |`
    ),
    ""
  ].join("\n")
}

const main = Effect.gen(function*() {
  const cpus = Os.cpus()
  const machineLine = `${Os.type()} ${Os.release()} ${Os.arch()}, ${cpus.length} × ${cpus[0]?.model ?? "?"}, Node ${process.version}`
  const { dataDir, url, postmaster } = yield* benchCluster("peers")
  const database = Database.layer({ url: Redacted.make(url), maxConnections: CONCURRENCY + 4, applicationName: "bench" })
  const services = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer).pipe(Layer.provideMerge(database))

  return yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).pipe(Effect.orDie)
    // Planning time per statement (off by default; a reload applies it to every backend).
    yield* sql.unsafe(`ALTER SYSTEM SET pg_stat_statements.track_planning = on`).pipe(Effect.orDie)
    yield* sql.unsafe(`SELECT pg_reload_conf()`).pipe(Effect.orDie)
    console.error("ours, checkpoints off …")
    const off = yield* runOurs(url, dataDir, postmaster, "off", { OPEN_COWORK_CLOUD_CHECKPOINTS: "false" })
    console.error(JSON.stringify(off.result))
    if (process.env.BENCH_PEERS_ONLY_OFF === "1") {
      console.log(JSON.stringify({ date: new Date().toISOString(), commit: gitCommit(), machine: machineLine, off: off.result }))
      return
    }
    console.error("ours, checkpoints on …")
    const on = yield* runOurs(url, dataDir, postmaster, "on", {}, off.stack.token)
    console.error(JSON.stringify(on.result))
    console.error("graphile-worker …")
    const graphile = yield* runGraphileWorker(url, postmaster)
    console.error(JSON.stringify(graphile))
    console.error("ceiling …")
    const ceiling = yield* runCeiling(postmaster)
    console.error(JSON.stringify(ceiling))
    const results = {
      date: new Date().toISOString(),
      commit: gitCommit(),
      machine: machineLine,
      off: off.result,
      on: on.result,
      graphile,
      ceiling
    }
    const markdown = report(results)
    console.log(JSON.stringify(results, null, 2))
    console.log(markdown)
    if (process.env.BENCH_NO_APPEND !== "1") {
      Fs.appendFileSync(Path.join(repoRoot, "docs/benchmarks.md"), `\n${markdown}\n`)
      console.error("appended to docs/benchmarks.md")
    }
  }).pipe(Effect.provide(services))
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
