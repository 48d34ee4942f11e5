import { Database, PgTokens, PgWorkflowStore } from "@cowork/postgres"
import { Tokens, WorkflowStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type CoworkProcess, eventually, runCli, spawn } from "../../../test/support/CoworkProcess.ts"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { workflowInput } from "../../../packages/services/test/support/WorkflowStoreContract.ts"

/**
 * The exactly-once drill with real processes: three `cowork scheduler` processes on one database, 50 workflows on a
 * 1-second (6-field) cron, one scheduler SIGKILLed and restarted every few seconds. Afterwards every slot of every
 * workflow in the window has exactly one run (no double, none missing: the catch-up window covers the outage), and
 * every run's session got exactly one prompt.
 */

const WORKFLOWS = 50
const DRILL_MS = 30_000
const KILL_EVERY_MS = 4_000

const drill = (url: string) =>
  Effect.gen(function*() {
    const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-sched-drill-")) }
    yield* runCli(["migrate"], env)

    const sql = yield* SqlClient.SqlClient
    const store = yield* WorkflowStore
    const { orgId } = yield* (yield* Tokens).createOrg("drill")
    const ids: Array<string> = []
    for (let i = 0; i < WORKFLOWS; i++) {
      const workflow = yield* store.create(orgId, workflowInput({
        title: `drill ${i}`,
        triggers: [{ id: "tick", type: "schedule", enabled: true, schedule: { type: "cron", expression: "* * * * * *", timezone: "UTC" } }],
        overlapPolicy: "allow"
      }))
      ids.push(workflow.id)
    }

    const schedulerEnv = (id: string) => ({
      ...env,
      OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
      OPEN_COWORK_CLOUD_SCHEDULER_ID: id,
      OPEN_COWORK_CLOUD_SCHEDULER_TICK_MS: "200",
      OPEN_COWORK_CLOUD_SCHEDULER_CLAIM_TTL_MS: "2000",
      OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500",
      // 50 workflows a second in one org: far past the default 600 runs per hour, which is not what this drill is about.
      OPEN_COWORK_CLOUD_QUOTA_WORKFLOW_RUNS_PER_HOUR: "1000000"
    })
    const schedulers = new Map<string, CoworkProcess>()
    for (const id of ["drill-s1", "drill-s2", "drill-s3"]) schedulers.set(id, yield* spawn(id, ["scheduler"], schedulerEnv(id)))
    yield* eventually("three scheduler heartbeats", Effect.gen(function*() {
      const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_worker_heartbeats WHERE role = 'scheduler'`.pipe(Effect.orDie)
      return rows[0]!.n >= 3 ? true : undefined
    }), { timeoutMs: 60_000 })

    const started = Date.now()
    let kills = 0
    while (Date.now() - started < DRILL_MS) {
      yield* Effect.sleep(KILL_EVERY_MS)
      const victim = `drill-s${(kills % 3) + 1}`
      const proc = schedulers.get(victim)!
      proc.child.kill("SIGKILL")
      yield* Effect.promise(() => proc.exited)
      kills++
      schedulers.set(victim, yield* spawn(`${victim}-${kills}`, ["scheduler"], schedulerEnv(victim)))
    }
    const windowEnd = (yield* sql<{ now: Date }>`SELECT now() AS now`.pipe(Effect.orDie))[0]!.now.getTime()

    // Every workflow decided every slot up to the end of the window (restarted schedulers catch up).
    yield* eventually("the schedulers to catch up to the end of the window", Effect.gen(function*() {
      const rows = yield* sql<{ behind: number }>`
        SELECT count(*)::int AS behind FROM cloud_workflows WHERE schedule_cursor < ${new Date(windowEnd)}`.pipe(Effect.orDie)
      return rows[0]!.behind === 0 ? true : undefined
    }), { timeoutMs: 60_000, intervalMs: 250 })

    const created = yield* sql<{ id: string; created_at: Date }>`SELECT id, created_at FROM cloud_workflows`.pipe(Effect.orDie)
    const runs = yield* sql<{ workflow_id: string; scheduled_for: Date; status: string; session_id: string | null }>`
      SELECT workflow_id, scheduled_for, status, session_id FROM cloud_workflow_runs
      WHERE scheduled_for <= ${new Date(windowEnd)}`.pipe(Effect.orDie)
    let doubles = 0
    let missing = 0
    let skipped = 0
    for (const workflow of created) {
      const mine = runs.filter((run) => run.workflow_id === workflow.id)
      const seen = new Map<number, number>()
      for (const run of mine) seen.set(run.scheduled_for.getTime(), (seen.get(run.scheduled_for.getTime()) ?? 0) + 1)
      doubles += [...seen.values()].filter((n) => n > 1).length
      skipped += mine.filter((run) => run.status === "cancelled").length
      for (let slot = Math.floor(workflow.created_at.getTime() / 1000) * 1000 + 1000; slot <= windowEnd; slot += 1000) {
        if (!seen.has(slot)) missing++
      }
    }
    const prompts = yield* sql<{ sessions: number; bad: number; runs: number }>`
      SELECT (SELECT count(DISTINCT session_id)::int FROM cloud_workflow_runs WHERE session_id IS NOT NULL) AS sessions,
             (SELECT count(*)::int FROM cloud_workflow_runs WHERE session_id IS NOT NULL) AS runs,
             (SELECT count(*)::int FROM (
                SELECT r.session_id FROM cloud_workflow_runs r LEFT JOIN cloud_session_commands c ON c.session_id = r.session_id
                WHERE r.session_id IS NOT NULL GROUP BY r.session_id HAVING count(c.id) <> 1) wrong) AS bad`.pipe(Effect.orDie)
    const reaped = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_workflows WHERE claim_epoch > 0`.pipe(Effect.orDie)

    yield* Effect.logInfo("scheduler drill").pipe(Effect.annotateLogs({
      runs: runs.length,
      kills,
      doubles,
      missing,
      skipped,
      sessions: prompts[0]!.sessions
    }))
    assert.isAtLeast(kills, 5)
    assert.isAtLeast(runs.length, WORKFLOWS * 20, "the window produced runs")
    assert.strictEqual(doubles, 0, "no slot fired twice")
    assert.strictEqual(missing, 0, "no slot within the catch-up window was missed")
    assert.strictEqual(skipped, 0, "the outages stayed within the catch-up window: nothing skipped")
    assert.strictEqual(prompts[0]!.sessions, prompts[0]!.runs, "one session per run")
    assert.strictEqual(prompts[0]!.bad, 0, "every run's session got exactly one prompt")
    assert.strictEqual(reaped[0]!.n, WORKFLOWS)
  })

const inspector = (url: string) =>
  Layer.mergeAll(PgWorkflowStore.layer, PgTokens.layer).pipe(
    Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 4, applicationName: "drill-inspector" }))
  )

it.live("3 schedulers, 50 workflows on a 1 s cron, SIGKILL + restart every few seconds: every slot fires exactly once", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    return yield* drill(url).pipe(Effect.scoped, Effect.provide(inspector(url)))
  }), 180_000)
