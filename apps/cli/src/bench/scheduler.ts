/**
 * `npm run bench:scheduler`: runs started per second with N workflows due every second (a 6-field `* * * * * *`
 * cron, overlap `allow`) and 1 vs 3 scheduler replicas, and the due → prompt-enqueued lag (the run row's commit time
 * minus its slot) p50 / p99, on embedded Postgres. Each replica is a tick loop with its own connection pool, as a
 * separate process would have. Results are appended to docs/benchmarks.md.
 */
import { DEFAULT_QUOTAS } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Database, PgQuotas, PgTokens, PgWorkflowStore, runMigrations, startEmbeddedPostgres } from "@cowork/postgres"
import { SchedulerConfig, tick } from "@cowork/scheduler"
import { Tokens, WorkflowStore } from "@cowork/services"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Fiber, Layer, Redacted, References, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { envInt, envInts } from "./stack.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const WINDOW_SECONDS = envInt("BENCH_SCHEDULER_SECONDS", 20)
const SIZES = envInts("BENCH_SCHEDULER_WORKFLOWS", [100, 300])
const TICK_MS = 200

interface Row {
  readonly workflows: number
  readonly replicas: number
  readonly runsPerSecond: number
  readonly demandPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly missing: number
}

const measure = (clusterUrl: (database: string) => string, workflows: number, replicas: number) =>
  Effect.gen(function*() {
    const name = `sched_${workflows}_${replicas}_${globalThis.crypto.randomUUID().slice(0, 6)}`
    yield* Database.ensureDatabase(clusterUrl("postgres"), name)
    const url = Redacted.make(clusterUrl(name))
    const pool = (applicationName: string) => Database.layer({ url, maxConnections: 4, applicationName })

    const setup = Effect.gen(function*() {
      yield* runMigrations
      const { orgId } = yield* (yield* Tokens).createOrg("bench")
      const store = yield* WorkflowStore
      for (let i = 0; i < workflows; i++) {
        yield* store.create(orgId, {
          title: `bench ${i}`,
          instructions: "bench",
          agentName: "build",
          skillNames: [],
          toolIds: [],
          steps: [],
          triggers: [{ id: "s", type: "schedule", enabled: true, schedule: { type: "cron", expression: "* * * * * *", timezone: "UTC" } }],
          overlapPolicy: "allow",
          catchUpWindowSeconds: 3_600,
          catchUpMode: "each",
          sealedSecrets: []
        })
      }
    }).pipe(Effect.provide(Layer.mergeAll(PgTokens.layer, PgWorkflowStore.layer).pipe(Layer.provideMerge(pool("bench-setup")))))
    yield* setup

    const loops = yield* Effect.forEach(Array.from({ length: replicas }, (_, i) => i + 1), (i) =>
      tick.pipe(
        Effect.repeat(Schedule.spaced(`${TICK_MS} millis`)),
        Effect.provide(Layer.mergeAll(
          Layer.merge(PgWorkflowStore.layer, PgQuotas.layer).pipe(Layer.provide(pool(`bench-scheduler-${i}`))),
          // The quota is counted on every fire (as in production) but set out of reach: the bench measures throughput.
          SchedulerConfig.layerTest({
            schedulerId: `bench-${i}`,
            tickMs: TICK_MS,
            quotaDefaults: { ...DEFAULT_QUOTAS, workflow_runs_per_hour: Number.MAX_SAFE_INTEGER }
          }),
          Metrics.layerTest("scheduler")
        )),
        Effect.forkChild
      ))
    const inspect = <A>(query: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
      Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => query(sql)).pipe(Effect.provide(pool("bench-inspector")), Effect.orDie)
    const start = yield* inspect((sql) => Effect.map(sql<{ now: Date }>`SELECT now() AS now`, (rows) => rows[0]!.now))
    yield* Effect.sleep(`${WINDOW_SECONDS} seconds`)
    yield* Effect.forEach(loops, Fiber.interrupt)
    // Steady state only: skip the first and last two seconds of the window.
    const from = new Date(start.getTime() + 2_000)
    const to = new Date(start.getTime() + (WINDOW_SECONDS - 2) * 1_000)
    const stats = yield* inspect((sql) =>
      sql<{ n: number; p50: number; p99: number; max: number }>`
        SELECT count(*)::int AS n,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - scheduled_for) * 1000) AS p50,
          percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - scheduled_for) * 1000) AS p99,
          max(extract(epoch FROM created_at - scheduled_for) * 1000)::float8 AS max
        FROM cloud_workflow_runs WHERE scheduled_for >= ${from} AND scheduled_for < ${to} AND status <> 'cancelled'`)
    const seconds = (to.getTime() - from.getTime()) / 1_000
    const s = stats[0]!
    return {
      workflows,
      replicas,
      runsPerSecond: Math.round((s.n / seconds) * 10) / 10,
      demandPerSecond: workflows,
      p50: Math.round(Number(s.p50 ?? 0)),
      p99: Math.round(Number(s.p99 ?? 0)),
      max: Math.round(Number(s.max ?? 0)),
      missing: workflows * seconds - s.n
    } satisfies Row
  })

const main = Effect.gen(function*() {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-bench-scheduler-"))
  // initdb may run as another user (root runs it as postgres): the dir must be traversable.
  Fs.chmodSync(dataDir, 0o755)
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
  const load = Os.loadavg().map((n) => n.toFixed(2)).join(" / ")
  const cluster = yield* startEmbeddedPostgres(Path.join(dataDir, "postgres"))
  const rows: Array<Row> = []
  for (const workflows of SIZES) {
    for (const replicas of [1, 3]) {
      const row = yield* measure(cluster.url, workflows, replicas)
      yield* Effect.logInfo("bench:scheduler").pipe(Effect.annotateLogs({ ...row }))
      rows.push(row)
    }
  }
  const cpus = Os.cpus()
  const report = [
    "",
    `## ${new Date().toISOString()} — \`npm run bench:scheduler\``,
    "",
    `Machine: ${Os.type()} ${Os.release()} ${Os.arch()}; ${cpus.length} × ${cpus[0]?.model.trim() ?? "cpu"}; Node ${process.version};`,
    `load average at start (1/5/15 min): ${load}.`,
    `Setup: embedded Postgres (fsync on); N workflows on \`* * * * * *\` (UTC, overlap \`allow\`); each scheduler replica a`,
    `tick loop (${TICK_MS} ms) with its own 4-connection pool, all in the benchmark process; ${WINDOW_SECONDS} s per run, the first and`,
    "last 2 s left out. Lag = the run's `created_at` (start of the one transaction that inserts it with its session and prompt) minus its slot.",
    "",
    "| workflows due every second | replicas | runs started /s (demand) | due → prompt enqueued p50 / p99 / max | slots not started in the window |",
    "|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.workflows} | ${r.replicas} | ${r.runsPerSecond} (${r.demandPerSecond}) | ${r.p50} / ${r.p99} / ${r.max} ms | ${r.missing} |`
    ),
    ""
  ].join("\n")
  Fs.appendFileSync(Path.join(repoRoot, "docs/benchmarks.md"), report)
  yield* Effect.sync(() => process.stdout.write(report))
}).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Info"))

NodeRuntime.runMain(main)
