/**
 * `npm run bench:pipeline`: the all-in-one stack (`cowork up` as a child process, scripted runtime, 4 worker
 * fibers) on an embedded Postgres started here, measured from a separate load process over HTTP/SSE:
 *
 * 1. latency: prompt POST → first worker-produced SSE event (`session.status` running) and → first
 *    `assistant.message` delta, at a steady 50 prompts/s over 50 sessions (one prompt per session per second);
 * 2. throughput: sustained commands/s end to end (first POST → last ack) for a backlog of prompts;
 * 3. idle: Postgres statements per minute with 0 and with 1,000 open SSE streams (pg_stat_statements calls and
 *    pg_stat_database xact_commit deltas);
 * 3b. the same backlog on a second stack with checkpoints off (the session pipeline alone);
 * 4. ceiling: after the stack stops, the same fenced statements (claim → next → one append with the ack →
 *    release) issued back to back by 4 fibers on the same database, with no runtime and no event streaming.
 *
 * Prints the results and appends them to docs/benchmarks.md. Settings: docs/benchmarks.md, "Bench settings".
 */
import { Database, PgCommandQueue, PgEventLog, PgLeaseStore } from "@cowork/postgres"
import { benchCluster, ceilingWorker, createSessions, envInt, gitHead, machine, percentile, pool, prompt, round, sleep, type Stack, startStack, stopStack } from "./stack.ts"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { openSse } from "@cowork/client"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const LATENCY_SECONDS = envInt("BENCH_LATENCY_SECONDS", 10)
const LATENCY_RATE = 50
const LATENCY_SESSIONS = 50
const THROUGHPUT_COMMANDS = envInt("BENCH_THROUGHPUT_COMMANDS", 2000)
const THROUGHPUT_SESSIONS = 200
const IDLE_STREAMS = envInt("BENCH_IDLE_STREAMS", 1000)
const IDLE_WINDOW_MS = envInt("BENCH_IDLE_WINDOW_MS", 30_000)
const WORKER_CONCURRENCY = 4
const PROMPT = "[[events:3]] benchmark prompt"

const WORKER_EVENT_TYPES = new Set([
  "session.status", "assistant.message", "tool.call", "command.retried", "runtime.error", "session.idle"
])

/** `cowork up` with WORKER_CONCURRENCY fibers; the idle phase holds IDLE_STREAMS streams for one org on one web process. */
const stackOptions = (databaseUrl: string, dataDir: string, extraEnv: Record<string, string> = {}) => ({
  databaseUrl,
  dataDir,
  workerConcurrency: WORKER_CONCURRENCY,
  extraEnv: { OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: String(IDLE_STREAMS + 100), ...extraEnv }
})

// ---------------------------------------------------------------------------------------------------------------

interface LatencyResult {
  readonly prompts: number
  readonly measured: number
  readonly skippedOverlaps: number
  readonly achievedRate: number
  readonly firstEvent: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly firstDelta: { readonly p50: number; readonly p99: number }
  readonly idle: { readonly p50: number; readonly p99: number }
  readonly postAccepted: { readonly p50: number; readonly p99: number }
}

const measureLatency = async (stack: Stack): Promise<LatencyResult> => {
  const sessions = await createSessions(stack, LATENCY_SESSIONS, "latency")
  const controller = new AbortController()
  interface Pending { readonly sentAt: number; firstEvent?: number; firstDelta?: number; idle?: number; accepted?: number }
  const pending = new Map<string, Pending>()
  const done: Array<Pending> = []
  await Promise.all(sessions.map((sessionId) =>
    openSse(`${stack.baseUrl}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${stack.token}` }, controller.signal, (frame) => {
      const now = performance.now()
      const current = pending.get(sessionId)
      if (current === undefined || !WORKER_EVENT_TYPES.has(frame.event)) return
      current.firstEvent ??= now
      if (frame.event === "assistant.message") current.firstDelta ??= now
      if (frame.event === "session.idle") {
        current.idle = now
        pending.delete(sessionId)
        done.push(current)
      }
    })))

  const send = (sessionId: string, record: boolean) => {
    const entry: Pending = { sentAt: performance.now() }
    if (pending.has(sessionId)) return false
    if (record) pending.set(sessionId, entry)
    return prompt(stack, sessionId, PROMPT).then(() => {
      entry.accepted = performance.now()
    })
  }

  // Warm-up: one prompt per session (JIT, pools, prepared statements), not measured.
  await Promise.all(sessions.map((sessionId) => send(sessionId, true)))
  const warmDeadline = Date.now() + 30_000
  while (pending.size > 0 && Date.now() < warmDeadline) await sleep(20)
  done.length = 0

  const total = LATENCY_RATE * LATENCY_SECONDS
  const interval = 1000 / LATENCY_RATE
  let skippedOverlaps = 0
  const started = performance.now()
  const inflight: Array<Promise<unknown>> = []
  for (let i = 0; i < total; i++) {
    await sleep(started + i * interval - performance.now())
    const sent = send(sessions[i % sessions.length]!, true)
    if (sent === false) skippedOverlaps++
    else inflight.push(sent)
  }
  const sendSeconds = (performance.now() - started) / 1000
  await Promise.all(inflight)
  const drainDeadline = Date.now() + 30_000
  while (pending.size > 0 && Date.now() < drainDeadline) await sleep(20)
  controller.abort()

  const firstEvent = done.map((d) => d.firstEvent! - d.sentAt)
  const firstDelta = done.filter((d) => d.firstDelta !== undefined).map((d) => d.firstDelta! - d.sentAt)
  const idle = done.map((d) => d.idle! - d.sentAt)
  const accepted = done.filter((d) => d.accepted !== undefined).map((d) => d.accepted! - d.sentAt)
  return {
    prompts: total,
    measured: done.length,
    skippedOverlaps,
    achievedRate: round(total / sendSeconds),
    firstEvent: { p50: round(percentile(firstEvent, 50)), p99: round(percentile(firstEvent, 99)), max: round(Math.max(...firstEvent)) },
    firstDelta: { p50: round(percentile(firstDelta, 50)), p99: round(percentile(firstDelta, 99)) },
    idle: { p50: round(percentile(idle, 50)), p99: round(percentile(idle, 99)) },
    postAccepted: { p50: round(percentile(accepted, 50)), p99: round(percentile(accepted, 99)) }
  }
}

// ---------------------------------------------------------------------------------------------------------------

const countAcked = (sessionPrefix: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ n: number }>(
      `SELECT count(*)::int AS n FROM cloud_session_commands c JOIN cloud_sessions s ON s.id = c.session_id
       WHERE s.title LIKE $1 AND c.status = 'acked'`,
      [`${sessionPrefix}-%`]
    )
    return Number(rows[0]!.n)
  }).pipe(Effect.orDie)

const measureThroughput = (stack: Stack, label: string) =>
  Effect.gen(function*() {
    const sessions = yield* Effect.promise(() => createSessions(stack, THROUGHPUT_SESSIONS, label))
    const perSession = Math.ceil(THROUGHPUT_COMMANDS / sessions.length)
    const jobs = sessions.flatMap((sessionId) => Array.from({ length: perSession }, () => sessionId))
    const started = performance.now()
    const enqueue = Effect.promise(() =>
      pool(jobs, 64, (sessionId) => prompt(stack, sessionId, PROMPT))
    ).pipe(Effect.map(() => performance.now()))
    const enqueued = yield* Effect.forkChild(enqueue)
    let acked = 0
    const deadline = Date.now() + 300_000
    while (acked < jobs.length && Date.now() < deadline) {
      yield* Effect.sleep(25)
      acked = yield* countAcked(label)
    }
    const finished = performance.now()
    const enqueueDone = yield* Fiber.join(enqueued)
    const sql = yield* SqlClient.SqlClient
    const span = yield* sql.unsafe<{ seconds: number }>(
      `SELECT extract(epoch FROM max(c.completed_at) - min(c.completed_at))::float8 AS seconds
       FROM cloud_session_commands c JOIN cloud_sessions s ON s.id = c.session_id WHERE s.title LIKE $1`,
      [`${label}-%`]
    ).pipe(Effect.orDie)
    const seconds = (finished - started) / 1000
    return {
      commands: jobs.length,
      acked,
      seconds: round(seconds, 2),
      commandsPerSecond: round(acked / seconds),
      enqueuePerSecond: round(jobs.length / ((enqueueDone - started) / 1000)),
      ackSpanCommandsPerSecond: round(acked / Number(span[0]!.seconds))
    }
  })

// ---------------------------------------------------------------------------------------------------------------

const statementCounters = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const statements = yield* sql.unsafe<{ calls: number }>(
    `SELECT coalesce(sum(calls), 0)::float8 AS calls FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND query NOT ILIKE '%pg_stat%'`
  )
  const xacts = yield* sql.unsafe<{ xact_commit: number }>(
    `SELECT xact_commit::float8 AS xact_commit FROM pg_stat_database WHERE datname = current_database()`
  )
  return { statements: Number(statements[0]!.calls), xactCommit: Number(xacts[0]!.xact_commit) }
}).pipe(Effect.orDie)

/** Statements per minute over one window; our own two counter reads per sample are excluded from `statements`. */
const idleWindow = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`SELECT pg_stat_clear_snapshot()`).pipe(Effect.orDie)
  const before = yield* statementCounters
  yield* Effect.sleep(IDLE_WINDOW_MS)
  yield* sql.unsafe(`SELECT pg_stat_clear_snapshot()`).pipe(Effect.orDie)
  const after = yield* statementCounters
  const perMinute = 60_000 / IDLE_WINDOW_MS
  return {
    statementsPerMinute: round((after.statements - before.statements) * perMinute),
    // Each counter sample is ~3 transactions of our own; subtract them.
    xactCommitPerMinute: round(Math.max(0, after.xactCommit - before.xactCommit - 3) * perMinute)
  }
})

const measureIdle = (stack: Stack) =>
  Effect.gen(function*() {
    const sessions = yield* Effect.promise(() => createSessions(stack, IDLE_STREAMS, "idle"))
    yield* Effect.sleep(2_000)
    const baseline = yield* idleWindow
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    yield* Effect.promise(() =>
      pool(sessions, 100, (sessionId) =>
        openSse(`${stack.baseUrl}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${stack.token}` }, controller.signal, () => {}))
    )
    yield* Effect.sleep(3_000)
    const withStreams = yield* idleWindow
    return { streams: sessions.length, windowMs: IDLE_WINDOW_MS, baseline, withStreams }
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------------------------

/** Seeds sessions with pending prompts directly in SQL (as the web role would), for the ceiling run. */
const seedBacklog = (sessions: number, perSession: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const org = yield* sql.unsafe<{ id: string }>(`SELECT id FROM cloud_orgs ORDER BY created_at LIMIT 1`)
    const orgId = org[0]!.id
    yield* sql.unsafe(
      `WITH s AS (
         INSERT INTO cloud_sessions (id, org_id, title)
         SELECT 'ses_ceiling_' || g, $1, 'ceiling-' || g FROM generate_series(1, $2) g RETURNING id
       ), p AS (
         INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) SELECT id, $1, 0 FROM s RETURNING session_id
       ), l AS (
         INSERT INTO cloud_worker_leases (session_id) SELECT session_id FROM p RETURNING session_id
       )
       INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
       SELECT 'cmd_ceiling_' || l.session_id || '_' || k, l.session_id, $1, 'prompt', '{"text":"ceiling"}'::jsonb
       FROM l, generate_series(1, $3) k ORDER BY l.session_id, k`,
      [orgId, sessions, perSession]
    )
  }).pipe(Effect.orDie)

const measureCeiling = Effect.gen(function*() {
  const sessions = THROUGHPUT_SESSIONS
  const perSession = Math.ceil(THROUGHPUT_COMMANDS / sessions)
  yield* seedBacklog(sessions, perSession)
  const fiber = ceilingWorker
  const started = performance.now()
  const counts = yield* Effect.all(
    Array.from({ length: WORKER_CONCURRENCY }, (_, i) => fiber(`ceiling-${i}`)),
    { concurrency: "unbounded" }
  )
  const seconds = (performance.now() - started) / 1000
  const total = counts.reduce((a, b) => a + b, 0)
  return { commands: total, seconds: round(seconds, 2), commandsPerSecond: round(total / seconds) }
}).pipe(Effect.orDie)

// ---------------------------------------------------------------------------------------------------------------

const report = (results: any) => {
  const { latency, throughput, throughputBare, ceiling, idle } = results
  const verdict = (ok: boolean) => (ok ? "meets target" : "MISSES target")
  const ratio = round(throughput.commandsPerSecond / ceiling.commandsPerSecond, 2)
  const ratioBare = round(throughputBare.commandsPerSecond / ceiling.commandsPerSecond, 2)
  const streamsCost = round(idle.withStreams.statementsPerMinute - idle.baseline.statementsPerMinute)
  return [
    `## ${results.date} — \`npm run bench:pipeline\` (commit ${results.commit})`,
    "",
    `Machine: ${results.machine.os}; ${results.machine.cpus}; ${results.machine.memory} RAM; Node ${results.machine.node};`,
    `load average at start (1/5/15 min): ${results.machine.loadAverage}.`,
    `Stack: \`cowork up\` (web + worker, ${WORKER_CONCURRENCY} worker fibers, scripted runtime, prompt \`${PROMPT}\`) as a child process on`,
    "embedded Postgres (fsync on) started by the benchmark; load and SSE clients in the benchmark process.",
    "",
    "| measure | result | target |",
    "|---|---|---|",
    `| prompt → first worker event (\`session.status\` running) on SSE, p50 / p99 / max | ${latency.firstEvent.p50} / ${latency.firstEvent.p99} / ${latency.firstEvent.max} ms | p50 ≤ 20 ms, p99 ≤ 100 ms: ${verdict(latency.firstEvent.p50 <= 20 && latency.firstEvent.p99 <= 100)} |`,
    `| prompt → first \`assistant.message\` delta on SSE, p50 / p99 | ${latency.firstDelta.p50} / ${latency.firstDelta.p99} ms | |`,
    `| prompt → \`session.idle\` on SSE, p50 / p99 | ${latency.idle.p50} / ${latency.idle.p99} ms | |`,
    `| POST /prompt → 202, p50 / p99 | ${latency.postAccepted.p50} / ${latency.postAccepted.p99} ms | |`,
    `| offered load | ${latency.achievedRate} prompts/s over ${LATENCY_SESSIONS} sessions, ${latency.measured} of ${latency.prompts} measured (${latency.skippedOverlaps} skipped: previous prompt of the session still running) | 50 prompts/s |`,
    `| sustained commands/s end to end (first POST → last ack, ${throughput.commands} prompts over ${THROUGHPUT_SESSIONS} sessions) | ${throughput.commandsPerSecond} /s (${throughput.seconds} s; enqueue ${throughput.enqueuePerSecond} /s; first→last ack ${throughput.ackSpanCommandsPerSecond} /s) | ≥ 200 /s: ${verdict(throughput.commandsPerSecond >= 200)} |`,
    `| the same with checkpoints off (\`OPEN_COWORK_CLOUD_CHECKPOINTS=false\`: the session pipeline alone) | ${throughputBare.commandsPerSecond} /s (${throughputBare.seconds} s; first→last ack ${throughputBare.ackSpanCommandsPerSecond} /s) | ≥ 200 /s: ${verdict(throughputBare.commandsPerSecond >= 200)} |`,
    `| raw fenced claim → next → append+ack → release, ${WORKER_CONCURRENCY} fibers, same database | ${ceiling.commandsPerSecond} /s (${ceiling.commands} commands in ${ceiling.seconds} s) | |`,
    `| pipeline / ceiling, checkpoints on / off | ${ratio} / ${ratioBare} | |`,
    `| Postgres statements/min, idle, 0 streams (pg_stat_statements / xact_commit) | ${idle.baseline.statementsPerMinute} / ${idle.baseline.xactCommitPerMinute} | |`,
    `| Postgres statements/min, idle, ${idle.streams} SSE streams on ${idle.streams} sessions (pg_stat_statements / xact_commit) | ${idle.withStreams.statementsPerMinute} / ${idle.withStreams.xactCommitPerMinute} | total ≤ 10: ${verdict(idle.withStreams.statementsPerMinute <= 10)} |`,
    `| of which the ${idle.streams} open streams (difference) | ${streamsCost} | ≤ 10: ${verdict(streamsCost <= 10)} |`,
    "",
    `Idle windows: ${idle.windowMs / 1000} s each, scaled to a minute. The 0-stream baseline is the worker's own heartbeat, backstop`,
    "claim poll and reaper ticks plus the web role's LISTEN connection; the difference is what the open streams cost.",
    ""
  ].join("\n")
}

const main = Effect.gen(function*() {
  const startMachine = machine()
  const { dataDir, url } = yield* benchCluster("pipeline")
  const database = Database.layer({ url: Redacted.make(url), maxConnections: 8, applicationName: "bench" })
  const services = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer).pipe(Layer.provideMerge(database))

  return yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).pipe(Effect.orDie)
    console.error("starting cowork up …")
    const stack = yield* Effect.promise(() => startStack(stackOptions(url, dataDir)))
    console.error(`latency: ${LATENCY_RATE} prompts/s for ${LATENCY_SECONDS} s …`)
    const latency = yield* Effect.promise(() => measureLatency(stack))
    console.error(`throughput: ${THROUGHPUT_COMMANDS} prompts …`)
    const throughput = yield* measureThroughput(stack, "throughput")
    console.error(`idle: ${IDLE_STREAMS} SSE streams, ${IDLE_WINDOW_MS / 1000} s windows …`)
    const idle = yield* measureIdle(stack)
    const exitCode = yield* stopStack(stack)
    // The same backlog on a stack without checkpoints: the session pipeline alone, as the ceiling measures it.
    console.error(`stack stopped (exit ${exitCode}); throughput with checkpoints off …`)
    const bare = yield* Effect.promise(() => startStack({ ...stackOptions(url, dataDir, { OPEN_COWORK_CLOUD_CHECKPOINTS: "false" }), knownToken: stack.token }))
    const throughputBare = yield* measureThroughput(bare, "bare")
    yield* stopStack(bare)
    console.error("ceiling …")
    const ceiling = yield* measureCeiling
    const results = { date: new Date().toISOString(), commit: gitHead(), machine: startMachine, latency, throughput, throughputBare, idle, ceiling }
    const markdown = report(results)
    console.log(JSON.stringify(results, null, 2))
    console.log(markdown)
    if (process.env.BENCH_NO_APPEND === "1") return
    const file = Path.join(repoRoot, "docs/benchmarks.md")
    if (!Fs.existsSync(file)) {
      Fs.writeFileSync(file, "# Benchmarks\n\nAppended by `npm run bench:pipeline` (apps/cli/src/bench/pipeline.ts); newest last.\n\n")
    }
    Fs.appendFileSync(file, `${markdown}\n`)
    console.error(`appended to ${Path.relative(repoRoot, file)}`)
  }).pipe(Effect.provide(services))
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
