import {
  Conflict,
  decodeSessionCursor,
  encodeSessionCursor,
  MAX_RUN_SUMMARY_LENGTH,
  newCommandId,
  newSessionId,
  newWorkflowId,
  newWorkflowRunId,
  NotFound,
  Replayed,
  StaleClaim,
  webhookPath,
  type Workflow,
  type WorkflowRun,
  type WorkflowRunStatus,
  type WorkflowTrigger
} from "@cowork/domain"
import {
  type CreateWorkflowInput,
  DEFAULT_PROFILE_NAME,
  DefaultProfileName,
  type FireResult,
  nextSlot,
  type PageQuery,
  quotaExceeded,
  runPromptText,
  type SchedulerOutlook,
  type SlotPlan,
  type StartRunInput,
  summarize,
  type WorkflowAction,
  type WorkflowClaim,
  WorkflowStore
} from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { appendEvents } from "./AppendEvents.ts"
import { countEstimate } from "./CountEstimate.ts"
import { COMMANDS_CHANNEL, formatCommandSignal, notifyWorkflowChanged } from "./Channels.ts"
import { admitInWindow, usedInWindow } from "./QuotaWindows.ts"

interface WorkflowRow {
  readonly id: string
  readonly org_id: string
  readonly title: string
  readonly instructions: string
  readonly agent_name: string
  readonly skill_names: ReadonlyArray<string>
  readonly tool_ids: ReadonlyArray<string>
  readonly steps: ReadonlyArray<{ id: string; title: string; detail?: string }>
  readonly triggers: ReadonlyArray<WorkflowTrigger>
  readonly status: "active" | "paused" | "archived"
  readonly overlap_policy: "skip" | "buffer_one" | "allow"
  readonly catch_up_window_ms: number | string
  readonly catch_up_mode: "each" | "latest"
  readonly next_run_at: Date | null
  readonly last_run_at: Date | null
  readonly latest_run_id: string | null
  readonly latest_run_status: WorkflowRunStatus | null
  readonly latest_run_session_id: string | null
  readonly created_at: Date
  readonly updated_at: Date
}

interface RunRow {
  readonly id: string
  readonly workflow_id: string
  readonly session_id: string | null
  readonly trigger_type: "manual" | "schedule" | "webhook"
  readonly trigger_payload: unknown
  readonly scheduled_for: Date | null
  readonly status: WorkflowRunStatus
  readonly summary: string | null
  readonly error: string | null
  readonly created_at: Date
  readonly started_at: Date | null
  readonly finished_at: Date | null
}

const iso = (date: Date | null) => (date === null ? null : date.toISOString())

/** The summary's status: the lifecycle, or `running` / `failed` from the latest run of an active workflow. */
const workflowStatus = (lifecycle: WorkflowRow["status"], latest: WorkflowRunStatus | null): Workflow["status"] => {
  if (lifecycle !== "active") return lifecycle
  if (latest === "queued" || latest === "running") return "running"
  if (latest === "failed") return "failed"
  return "active"
}

const toWorkflow = (row: WorkflowRow): Workflow => ({
  id: row.id,
  title: row.title,
  instructions: row.instructions,
  agentName: row.agent_name,
  skillNames: row.skill_names,
  toolIds: row.tool_ids,
  steps: row.steps,
  status: workflowStatus(row.status, row.latest_run_status),
  triggers: row.triggers,
  overlapPolicy: row.overlap_policy,
  catchUpWindowSeconds: Math.round(Number(row.catch_up_window_ms) / 1000),
  catchUpMode: row.catch_up_mode,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  nextRunAt: row.status === "active" ? iso(row.next_run_at) : null,
  lastRunAt: iso(row.last_run_at),
  latestRunId: row.latest_run_id,
  latestRunStatus: row.latest_run_status,
  latestRunSessionId: row.latest_run_session_id,
  webhookUrl: row.triggers.some((trigger) => trigger.type === "webhook" && trigger.enabled) ? webhookPath(row.id) : null
})

const toRun = (row: RunRow): WorkflowRun => ({
  id: row.id,
  workflowId: row.workflow_id,
  sessionId: row.session_id,
  triggerType: row.trigger_type,
  triggerPayload: row.trigger_payload ?? null,
  scheduledFor: iso(row.scheduled_for),
  status: row.status,
  summary: row.summary,
  error: row.error,
  createdAt: row.created_at.toISOString(),
  startedAt: iso(row.started_at),
  finishedAt: iso(row.finished_at)
})

const RUN_COLUMNS =
  `id, workflow_id, session_id, trigger_type, trigger_payload, scheduled_for, status, summary, error, created_at, started_at, finished_at`

/** Opaque keyset cursor: the id of the last row of the previous page (the sessions' codec). */
const encodeCursor = encodeSessionCursor
const decodeCursor = decodeSessionCursor

const toMillis = (date: Date | string) => (date instanceof Date ? date.getTime() : Date.parse(date))

export interface WorkflowStoreOptions {
  /** The profile of the sessions runs create. */
  readonly defaultProfileName: string
}

const make = (options: WorkflowStoreOptions) => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const profileName = options.defaultProfileName
  const provideSql = Effect.provideService(SqlClient.SqlClient, sql)

  const dbNow = Effect.map(sql.unsafe<{ now: Date }>(`SELECT now() AS now`), (rows) => rows[0]!.now.getTime())

  /**
   * The session a run runs in, and its prompt command, with `session.created` + `prompt.submitted` and the workers'
   * NOTIFY — inside the caller's transaction, so the run row and its session commit together or not at all.
   */
  const createRunSession = (input: {
    readonly orgId: string
    readonly sessionId: string
    readonly commandId: string
    readonly title: string
    readonly text: string
    readonly agentName: string
    readonly runId: string
  }) =>
    Effect.gen(function*() {
      yield* sql.unsafe(
        `INSERT INTO cloud_sessions (id, org_id, title, profile_name, project_source) VALUES ($1, $2, $3, $4, $5::jsonb)`,
        [input.sessionId, input.orgId, input.title.slice(0, 200), profileName, JSON.stringify({ workflowRunId: input.runId })]
      )
      yield* sql.unsafe(`INSERT INTO cloud_session_projections (session_id, org_id) VALUES ($1, $2)`, [input.sessionId, input.orgId])
      yield* sql.unsafe(`INSERT INTO cloud_worker_leases (session_id) VALUES ($1)`, [input.sessionId])
      yield* sql.unsafe(
        `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, idempotency_key)
         VALUES ($1, $2, $3, 'prompt', $4::jsonb, $5)`,
        [input.commandId, input.sessionId, input.orgId, JSON.stringify({ text: input.text, agent: input.agentName }), `workflow-run:${input.runId}`]
      )
      yield* appendEvents(input.sessionId, [
        { type: "session.created", payload: { title: input.title.slice(0, 200), profileName } },
        { type: "prompt.submitted", payload: { commandId: input.commandId, text: input.text }, commandId: input.commandId }
      ], undefined).pipe(provideSql)
      yield* sql.unsafe(`SELECT pg_notify($1, $2)`, [COMMANDS_CHANNEL, formatCommandSignal({ kind: "prompt", sessionId: input.sessionId })])
    })

  /** Inserts a run (and, when it starts now, its session); `undefined` when the slot's row already exists. */
  const insertRun = (workflow: WorkflowRow, input: {
    readonly triggerType: "manual" | "schedule" | "webhook"
    readonly triggerId: string | null
    readonly payload: unknown
    readonly scheduledFor: number | null
    readonly mode: "start" | "buffer" | { readonly skipped: string }
  }) =>
    Effect.gen(function*() {
      const runId = newWorkflowRunId()
      const starts = input.mode === "start"
      const sessionId = starts ? newSessionId() : null
      const commandId = starts ? newCommandId() : null
      const skipped = typeof input.mode === "object" ? input.mode.skipped : null
      const rows = yield* sql.unsafe<RunRow>(
        `INSERT INTO cloud_workflow_runs
           (id, workflow_id, org_id, session_id, command_id, trigger_type, trigger_id, trigger_payload, scheduled_for, status, summary, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, to_timestamp($9::double precision / 1000), $10, $11,
           CASE WHEN $10 = 'cancelled' THEN now() END)
         ON CONFLICT (workflow_id, scheduled_for) DO NOTHING
         RETURNING ${RUN_COLUMNS}`,
        [
          runId,
          workflow.id,
          workflow.org_id,
          sessionId,
          commandId,
          input.triggerType,
          input.triggerId,
          input.payload === undefined ? null : JSON.stringify(input.payload),
          input.scheduledFor,
          skipped === null ? "queued" : "cancelled",
          skipped
        ]
      )
      const row = rows[0]
      if (row === undefined) return undefined
      if (sessionId !== null && commandId !== null) {
        yield* createRunSession({
          orgId: workflow.org_id,
          sessionId,
          commandId,
          title: workflow.title,
          text: runPromptText({ instructions: workflow.instructions, steps: workflow.steps }, input.payload),
          agentName: workflow.agent_name,
          runId
        })
        yield* sql.unsafe(
          `UPDATE cloud_workflows SET last_run_at = now(), latest_run_id = $2, latest_run_status = 'queued',
             latest_run_session_id = $3, updated_at = now() WHERE id = $1`,
          [workflow.id, runId, sessionId]
        )
      }
      return toRun(row)
    })

  const selectWorkflow = (orgId: string, workflowId: string, lock: "" | " FOR UPDATE" = "") =>
    Effect.map(
      sql.unsafe<WorkflowRow>(`SELECT * FROM cloud_workflows WHERE id = $1 AND org_id = $2${lock}`, [workflowId, orgId]),
      (rows) => rows[0]
    )

  const found = (orgId: string, workflowId: string, lock: "" | " FOR UPDATE" = "") =>
    Effect.flatMap(selectWorkflow(orgId, workflowId, lock), (row) =>
      row === undefined ? Effect.fail(new NotFound({ message: `workflow ${workflowId} not found` })) : Effect.succeed(row))

  const create = Effect.fn("WorkflowStore.create")(function*(orgId: string, input: CreateWorkflowInput) {
    const id = newWorkflowId()
    return yield* sql.withTransaction(Effect.gen(function*() {
      const now = yield* dbNow
      const next = nextSlot(input.triggers, now)
      const rows = yield* sql.unsafe<WorkflowRow>(
        `INSERT INTO cloud_workflows (id, org_id, title, instructions, agent_name, skill_names, tool_ids, steps, triggers,
           overlap_policy, catch_up_window_ms, catch_up_mode, schedule_cursor, next_run_at)
         VALUES ($1, $2, $3, $4, $5, $6::text[], $7::text[], $8::jsonb, $9::jsonb, $10, $11, $12, now(),
           CASE WHEN $13::double precision IS NULL THEN NULL ELSE to_timestamp($13::double precision / 1000) END)
         RETURNING *`,
        [
          id,
          orgId,
          input.title,
          input.instructions,
          input.agentName,
          [...input.skillNames],
          [...input.toolIds],
          JSON.stringify(input.steps),
          JSON.stringify(input.triggers),
          input.overlapPolicy,
          input.catchUpWindowSeconds * 1000,
          input.catchUpMode,
          next ?? null
        ]
      )
      for (const secret of input.sealedSecrets) {
        yield* sql.unsafe(
          `INSERT INTO cloud_workflow_trigger_secrets (workflow_id, trigger_id, sealed) VALUES ($1, $2, $3)`,
          [id, secret.triggerId, Buffer.from(secret.sealed).toString("base64")]
        )
      }
      if (next !== undefined) yield* notifyWorkflowChanged(sql)
      return toWorkflow(rows[0]!)
    })).pipe(Effect.orDie)
  })

  /**
   * One page of `table`'s rows whose `scopeColumn` is `scopeId`, newest first (`created_at DESC, id DESC`), after the
   * row the cursor names (in the same scope); the rows, the next cursor and the scope's total (`countEstimate`).
   */
  const newestFirst = <Row extends { readonly id: string }>(
    table: "cloud_workflows" | "cloud_workflow_runs",
    scopeColumn: "org_id" | "workflow_id",
    scopeId: string,
    columns: string,
    query: PageQuery
  ) =>
    Effect.gen(function*() {
      const totalEstimate = yield* countEstimate(sql, table, `${scopeColumn} = $1`, [scopeId])
      const cursorId = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
      const params: Array<unknown> = [scopeId, query.limit + 1]
      const keyset = cursorId === undefined
        ? ""
        : ` AND (created_at, id) < (SELECT c.created_at, c.id FROM ${table} c WHERE c.id = $3 AND c.${scopeColumn} = $1)`
      if (cursorId !== undefined) params.push(cursorId)
      const rows = yield* sql.unsafe<Row>(
        `SELECT ${columns} FROM ${table} WHERE ${scopeColumn} = $1${keyset} ORDER BY created_at DESC, id DESC LIMIT $2`,
        params
      )
      const page = rows.slice(0, query.limit)
      const last = page[page.length - 1]
      return {
        page,
        nextCursor: rows.length > query.limit && last !== undefined ? encodeCursor(last.id) : null,
        totalEstimate
      }
    })

  const list = Effect.fn("WorkflowStore.list")(function*(orgId: string, query: PageQuery) {
    const { nextCursor, page, totalEstimate } = yield* newestFirst<WorkflowRow>("cloud_workflows", "org_id", orgId, "*", query)
    return { workflows: page.map(toWorkflow), nextCursor, totalEstimate }
  }, Effect.orDie)

  const runsPage = (workflowId: string, query: PageQuery) =>
    Effect.map(
      newestFirst<RunRow>("cloud_workflow_runs", "workflow_id", workflowId, RUN_COLUMNS, query),
      ({ nextCursor, page, totalEstimate }) => ({ runs: page.map(toRun), nextCursor, totalEstimate })
    )

  const get = Effect.fn("WorkflowStore.get")(function*(orgId: string, workflowId: string, recentRuns: number) {
    const row = yield* found(orgId, workflowId).pipe(Effect.catchTag("SqlError", Effect.die))
    const runs = yield* runsPage(workflowId, { limit: recentRuns }).pipe(Effect.orDie)
    return { workflow: toWorkflow(row), recentRuns: runs.runs }
  })

  const listRuns = Effect.fn("WorkflowStore.listRuns")(function*(orgId: string, workflowId: string, query: PageQuery) {
    yield* found(orgId, workflowId).pipe(Effect.catchTag("SqlError", Effect.die))
    return yield* runsPage(workflowId, query).pipe(Effect.orDie)
  })

  const setLifecycle = Effect.fn("WorkflowStore.setLifecycle")(function*(orgId: string, workflowId: string, action: WorkflowAction) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const row = yield* found(orgId, workflowId, " FOR UPDATE")
      if (action === "archive") {
        if (row.status !== "archived") {
          yield* sql.unsafe(
            `UPDATE cloud_workflows SET status = 'archived', next_run_at = NULL, claimed_by = NULL, claim_expires_at = NULL,
               updated_at = now() WHERE id = $1`,
            [workflowId]
          )
        }
      } else if (row.status === "archived") {
        return yield* new Conflict({ message: `workflow ${workflowId} is archived` })
      } else if (action === "pause" && row.status === "active") {
        yield* sql.unsafe(
          `UPDATE cloud_workflows SET status = 'paused', claimed_by = NULL, claim_expires_at = NULL, updated_at = now() WHERE id = $1`,
          [workflowId]
        )
      } else if (action === "resume" && row.status === "paused") {
        // Slots that came due while paused are not owed: the schedule restarts from now.
        const now = yield* dbNow
        const next = nextSlot(row.triggers, now)
        yield* sql.unsafe(
          `UPDATE cloud_workflows SET status = 'active', schedule_cursor = now(),
             next_run_at = CASE WHEN $2::double precision IS NULL THEN NULL ELSE to_timestamp($2::double precision / 1000) END,
             updated_at = now() WHERE id = $1`,
          [workflowId, next ?? null]
        )
        if (next !== undefined) yield* notifyWorkflowChanged(sql)
      }
      return toWorkflow((yield* found(orgId, workflowId))!)
    })).pipe(Effect.catchTag("SqlError", Effect.die))
  })

  const startRun = Effect.fn("WorkflowStore.startRun")(function*(orgId: string, workflowId: string, input: StartRunInput) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const row = yield* found(orgId, workflowId, " FOR UPDATE")
      if (row.status === "archived" || (input.triggerType === "webhook" && row.status !== "active")) {
        return yield* new Conflict({ message: `workflow ${workflowId} is ${row.status}` })
      }
      // Counted in the run's transaction: a replay or any refusal below rolls the count back with the run.
      if (input.runsPerHour !== undefined) yield* admitInWindow(sql, orgId, "workflow_runs_per_hour", 1, input.runsPerHour)
      const run = yield* insertRun(row, {
        triggerType: input.triggerType,
        triggerId: input.triggerId ?? null,
        payload: input.payload,
        scheduledFor: null,
        mode: "start"
      })
      if (input.deliveryKey !== undefined) {
        const recorded = yield* sql.unsafe(
          `INSERT INTO cloud_webhook_deliveries (delivery_key, workflow_id, run_id) VALUES ($1, $2, $3)
           ON CONFLICT (delivery_key) DO NOTHING RETURNING 1`,
          [input.deliveryKey, workflowId, run!.id]
        )
        // The whole transaction (run, session) rolls back with the refusal.
        if (recorded.length === 0) return yield* new Replayed({ message: "this webhook signature was already accepted" })
      }
      // The scheduler follows the run's outcome.
      yield* notifyWorkflowChanged(sql)
      return run!
    })).pipe(Effect.catchTag("SqlError", Effect.die))
  })

  const rotateSecret = Effect.fn("WorkflowStore.rotateSecret")(function*(
    orgId: string,
    workflowId: string,
    triggerId: string,
    sealed: Uint8Array
  ) {
    const row = yield* found(orgId, workflowId).pipe(Effect.catchTag("SqlError", Effect.die))
    if (!row.triggers.some((trigger) => trigger.id === triggerId && trigger.type === "webhook")) {
      return yield* new NotFound({ message: `webhook trigger ${triggerId} not found` })
    }
    yield* sql.unsafe(
      `INSERT INTO cloud_workflow_trigger_secrets (workflow_id, trigger_id, sealed) VALUES ($1, $2, $3)
       ON CONFLICT (workflow_id, trigger_id) DO UPDATE SET sealed = EXCLUDED.sealed, rotated_at = now()`,
      [workflowId, triggerId, Buffer.from(sealed).toString("base64")]
    ).pipe(Effect.orDie)
  })

  const webhookTarget = Effect.fn("WorkflowStore.webhookTarget")(function*(workflowId: string) {
    const rows = yield* sql.unsafe<WorkflowRow>(`SELECT * FROM cloud_workflows WHERE id = $1`, [workflowId])
    const row = rows[0]
    if (row === undefined) return Option.none()
    const secrets = yield* sql.unsafe<{ trigger_id: string; sealed: string }>(
      `SELECT trigger_id, sealed FROM cloud_workflow_trigger_secrets WHERE workflow_id = $1`,
      [workflowId]
    )
    const sealedOf = new Map(secrets.map((secret) => [secret.trigger_id, new Uint8Array(Buffer.from(secret.sealed, "base64"))]))
    return Option.some({
      workflowId,
      orgId: row.org_id,
      lifecycle: row.status,
      triggers: row.triggers.flatMap((trigger) => {
        const sealed = sealedOf.get(trigger.id)
        return trigger.type === "webhook" && sealed !== undefined ? [{ triggerId: trigger.id, enabled: trigger.enabled, sealed }] : []
      })
    })
  }, Effect.orDie)

  // -- scheduler -------------------------------------------------------------------------------------------------

  const claimDue = Effect.fn("WorkflowStore.claimDue")(function*(schedulerId: string, limit: number, ttlMs: number) {
    const rows = yield* sql.unsafe<WorkflowRow & { claim_epoch: string | number; schedule_cursor: Date; db_now: Date }>(
      `WITH due AS (
         SELECT id FROM cloud_workflows
         WHERE status = 'active' AND claimed_by IS NULL AND next_run_at IS NOT NULL AND next_run_at <= now()
         ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE cloud_workflows w SET claimed_by = $1, claim_epoch = w.claim_epoch + 1,
         claim_expires_at = now() + ($3::double precision * interval '1 millisecond')
       FROM due WHERE w.id = due.id
       RETURNING w.*, now() AS db_now`,
      [schedulerId, limit, ttlMs]
    )
    const now = rows[0]?.db_now.getTime() ?? (yield* dbNow)
    const claims: Array<WorkflowClaim> = rows.map((row) => ({
      workflowId: row.id,
      orgId: row.org_id,
      schedulerId,
      epoch: Number(row.claim_epoch),
      triggers: row.triggers,
      cursor: toMillis(row.schedule_cursor),
      nextRunAt: toMillis(row.next_run_at!),
      overlapPolicy: row.overlap_policy,
      catchUpWindowMs: Number(row.catch_up_window_ms),
      catchUpMode: row.catch_up_mode
    }))
    return { now, claims }
  }, Effect.orDie)

  const stale = (claim: WorkflowClaim, operation: string) =>
    new StaleClaim({ workflowId: claim.workflowId, epoch: claim.epoch, operation })

  const renewClaim = Effect.fn("WorkflowStore.renewClaim")(function*(claim: WorkflowClaim, ttlMs: number) {
    const rows = yield* sql.unsafe(
      `UPDATE cloud_workflows SET claim_expires_at = now() + ($4::double precision * interval '1 millisecond')
       WHERE id = $1 AND claimed_by = $2 AND claim_epoch = $3 AND claim_expires_at > now() RETURNING 1`,
      [claim.workflowId, claim.schedulerId, claim.epoch, ttlMs]
    ).pipe(Effect.orDie)
    if (rows.length === 0) return yield* stale(claim, "renew")
  })

  /** A concurrent fire of the same org used the room this one planned with: the transaction is run again. */
  class QuotaRace {
    readonly _tag = "QuotaRace"
  }

  const fireSlots = Effect.fn("WorkflowStore.fireSlots")(function*(claim: WorkflowClaim, plan: SlotPlan, runsPerHour?: number) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      // The fence: the row lock keeps the reaper and other claimers out until this transaction ends.
      const rows = yield* sql.unsafe<WorkflowRow>(
        `SELECT * FROM cloud_workflows WHERE id = $1 AND claimed_by = $2 AND claim_epoch = $3
           AND claim_expires_at > clock_timestamp() FOR UPDATE`,
        [claim.workflowId, claim.schedulerId, claim.epoch]
      )
      const workflow = rows[0]
      if (workflow === undefined) return yield* stale(claim, "fire")
      if (plan.skipped !== null) {
        const { count, countCapped, first, last } = plan.skipped
        yield* insertRun(workflow, {
          triggerType: "schedule",
          triggerId: null,
          payload: { scheduledFor: new Date(last).toISOString(), skippedSlots: count, firstSkipped: new Date(first).toISOString() },
          scheduledFor: last,
          mode: { skipped: `skipped ${countCapped ? "at least " : ""}${count} slot(s) from ${new Date(first).toISOString()}: outside the catch-up window` }
        })
      }
      const open = yield* sql.unsafe<{ session_id: string | null }>(
        `SELECT session_id FROM cloud_workflow_runs WHERE workflow_id = $1 AND status IN ('queued', 'running')`,
        [claim.workflowId]
      )
      // The quota, optimistically: plan with the window's room read without a lock, count the runs as the last write
      // (the org's window row is then locked only until commit, so fires of one org do not queue behind each other).
      // A slot already recorded is a duplicate and costs nothing (the workflow row is locked: none appears meanwhile).
      let room = Number.POSITIVE_INFINITY
      let recorded = new Set<number>()
      if (runsPerHour !== undefined && plan.fire.length > 0) {
        room = runsPerHour - (yield* usedInWindow(sql, workflow.org_id, "workflow_runs_per_hour"))
        const existing = yield* sql.unsafe<{ slot: number }>(
          `SELECT (extract(epoch FROM scheduled_for) * 1000)::float8 AS slot FROM cloud_workflow_runs
           WHERE workflow_id = $1 AND scheduled_for = ANY(SELECT to_timestamp(unnest($2::float8[]) / 1000))`,
          [claim.workflowId, [...plan.fire]]
        )
        recorded = new Set(existing.map((row) => Number(row.slot)))
      }
      const refusedBecause = runsPerHour === undefined ? "" : `skipped: ${quotaExceeded("workflow_runs_per_hour", runsPerHour, 1).message}`
      let admitted = 0
      let running = open.some((run) => run.session_id !== null)
      let buffered = open.some((run) => run.session_id === null)
      const result = { started: [] as Array<WorkflowRun>, buffered: 0, skippedByOverlap: 0, skippedByQuota: 0, duplicates: 0 }
      for (const slot of plan.fire) {
        const base = { triggerType: "schedule" as const, triggerId: null, payload: { scheduledFor: new Date(slot).toISOString() }, scheduledFor: slot }
        let mode: "start" | "buffer" | { skipped: string } = "start"
        let refused = false
        if (running && workflow.overlap_policy === "skip") mode = { skipped: "skipped: the previous run is still in progress (overlap policy skip)" }
        if (running && workflow.overlap_policy === "buffer_one") {
          mode = buffered ? { skipped: "skipped: a run is already waiting (overlap policy buffer_one)" } : "buffer"
        }
        if (runsPerHour !== undefined && typeof mode !== "object" && !recorded.has(slot)) {
          if (admitted < room) {
            admitted++
          } else {
            mode = { skipped: refusedBecause }
            refused = true
          }
        }
        const run = yield* insertRun(workflow, { ...base, mode })
        if (run === undefined) {
          result.duplicates++
        } else if (refused) {
          result.skippedByQuota++
        } else if (mode === "start") {
          result.started.push(run)
          running = true
        } else if (mode === "buffer") {
          result.buffered++
          buffered = true
        } else {
          result.skippedByOverlap++
        }
      }
      yield* sql.unsafe(
        `UPDATE cloud_workflows SET schedule_cursor = to_timestamp($2::double precision / 1000),
           next_run_at = CASE WHEN $3::double precision IS NULL THEN NULL ELSE to_timestamp($3::double precision / 1000) END,
           claimed_by = NULL, claim_expires_at = NULL, updated_at = now()
         WHERE id = $1`,
        [claim.workflowId, plan.cursor, plan.nextRunAt]
      )
      // The very last statement: the org's window row stays locked only until this commit.
      if (runsPerHour !== undefined && admitted > 0) {
        yield* admitInWindow(sql, workflow.org_id, "workflow_runs_per_hour", admitted, runsPerHour).pipe(
          Effect.catchTag("RateLimited", () => Effect.fail(new QuotaRace()))
        )
      }
      return result satisfies FireResult
    })).pipe(
      Effect.retry({ while: (error) => error instanceof QuotaRace, times: 5 }),
      Effect.catchTag("SqlError", Effect.die),
      Effect.catchIf((error): error is QuotaRace => error instanceof QuotaRace, () => Effect.die(new Error("workflow quota: the org's window kept moving; the slots are decided on a later tick")))
    )
  })

  const releaseClaims = Effect.fn("WorkflowStore.releaseClaims")(function*(schedulerId: string) {
    const rows = yield* sql.unsafe(
      `UPDATE cloud_workflows SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = $1 RETURNING 1`,
      [schedulerId]
    )
    // The other replicas take them now, not when the claims would have expired.
    if (rows.length > 0) yield* notifyWorkflowChanged(sql)
    return rows.length
  }, Effect.orDie)

  const reapExpiredClaims = Effect.fn("WorkflowStore.reapExpiredClaims")(function*(drainCap: number) {
    const rows = yield* sql.unsafe(
      `WITH expired AS (
         SELECT id FROM cloud_workflows WHERE claimed_by IS NOT NULL AND claim_expires_at <= now()
         ORDER BY claim_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
       )
       UPDATE cloud_workflows w SET claimed_by = NULL, claim_expires_at = NULL FROM expired WHERE w.id = expired.id RETURNING 1`,
      [drainCap]
    )
    return { reaped: rows.length, capHit: rows.length >= drainCap }
  }, Effect.orDie)

  /** Starts the oldest buffered run of a workflow (its session and prompt), inside the caller's transaction. */
  const startBuffered = (workflowId: string) =>
    Effect.gen(function*() {
      const buffered = yield* sql.unsafe<{ id: string; trigger_payload: unknown }>(
        `SELECT id, trigger_payload FROM cloud_workflow_runs WHERE workflow_id = $1 AND status = 'queued' AND session_id IS NULL
         ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [workflowId]
      )
      const run = buffered[0]
      if (run === undefined) return
      const workflow = (yield* sql.unsafe<WorkflowRow>(`SELECT * FROM cloud_workflows WHERE id = $1`, [workflowId]))[0]!
      const sessionId = newSessionId()
      const commandId = newCommandId()
      yield* sql.unsafe(`UPDATE cloud_workflow_runs SET session_id = $2, command_id = $3 WHERE id = $1`, [run.id, sessionId, commandId])
      yield* createRunSession({
        orgId: workflow.org_id,
        sessionId,
        commandId,
        title: workflow.title,
        text: runPromptText({ instructions: workflow.instructions, steps: workflow.steps }, run.trigger_payload),
        agentName: workflow.agent_name,
        runId: run.id
      })
      yield* sql.unsafe(
        `UPDATE cloud_workflows SET last_run_at = now(), latest_run_id = $2, latest_run_status = 'queued',
           latest_run_session_id = $3, updated_at = now() WHERE id = $1`,
        [workflowId, run.id, sessionId]
      )
    })

  const syncRunOutcomes = Effect.fn("WorkflowStore.syncRunOutcomes")(function*(limit: number) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql.unsafe<{
        id: string
        workflow_id: string
        session_id: string
        status: WorkflowRunStatus
        command_status: string
        last_error: string | null
        started_at: Date | null
      }>(
        `SELECT r.id, r.workflow_id, r.session_id, r.status, c.status AS command_status, c.last_error, c.started_at
         FROM cloud_workflow_runs r JOIN cloud_session_commands c ON c.id = r.command_id
         WHERE r.status IN ('queued', 'running') AND c.status <> 'pending' AND NOT (r.status = 'running' AND c.status = 'running')
         ORDER BY r.created_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED`,
        [limit]
      )
      for (const row of rows) {
        let status: WorkflowRunStatus = "running"
        let summary: string | null = null
        let error: string | null = null
        if (row.command_status === "acked") {
          status = "completed"
          const reply = yield* sql.unsafe<{ text: string }>(
            `SELECT text FROM cloud_session_projection_messages WHERE session_id = $1 AND role = 'assistant'
             ORDER BY sequence DESC LIMIT 1`,
            [row.session_id]
          )
          summary = reply[0] === undefined ? null : summarize(reply[0].text, MAX_RUN_SUMMARY_LENGTH)
        } else if (row.command_status === "failed" || row.command_status === "dead") {
          status = "failed"
          error = (row.last_error ?? `the prompt ended ${row.command_status}`).slice(0, 1_000)
        } else if (row.command_status === "cancelled") {
          status = "cancelled"
          error = "the session was aborted"
        }
        const finished = status !== "running"
        yield* sql.unsafe(
          `UPDATE cloud_workflow_runs SET status = $2, summary = $3, error = $4,
             started_at = coalesce(started_at, $5, now()), finished_at = CASE WHEN $6 THEN now() END
           WHERE id = $1`,
          [row.id, status, summary, error, row.started_at, finished]
        )
        yield* sql.unsafe(
          `UPDATE cloud_workflows SET latest_run_status = $3, updated_at = now() WHERE id = $1 AND latest_run_id = $2`,
          [row.workflow_id, row.id, status]
        )
        if (finished) yield* startBuffered(row.workflow_id)
      }
      return rows.length
    })).pipe(Effect.orDie)
  })

  const outlook = Effect.fn("WorkflowStore.outlook")(function*(scanLimit: number) {
    // Each part reads a partial index (cloud_workflows_due, cloud_workflows_claimed, cloud_workflow_runs_open).
    const rows = yield* sql.unsafe<{
      db_now: Date
      n: string | number
      oldest_ms: number | null
      next_due: Date | null
      claim_expires: Date | null
      open_runs: boolean
    }>(
      `SELECT now() AS db_now, due.n, due.oldest_ms,
         least(
           (SELECT min(next_run_at) FROM cloud_workflows
            WHERE status = 'active' AND claimed_by IS NULL AND next_run_at IS NOT NULL),
           (SELECT min(next_run_at) FROM cloud_workflows WHERE claimed_by IS NOT NULL AND status = 'active')
         ) AS next_due,
         (SELECT min(claim_expires_at) FROM cloud_workflows WHERE claimed_by IS NOT NULL) AS claim_expires,
         EXISTS (SELECT 1 FROM cloud_workflow_runs WHERE status IN ('queued', 'running') AND session_id IS NOT NULL) AS open_runs
       FROM (
         SELECT count(*) AS n, (extract(epoch FROM now() - min(next_run_at)) * 1000)::float8 AS oldest_ms FROM (
           SELECT next_run_at FROM cloud_workflows
           WHERE status = 'active' AND claimed_by IS NULL AND next_run_at IS NOT NULL AND next_run_at <= now()
           LIMIT $1
         ) d
       ) due`,
      [scanLimit]
    )
    const row = rows[0]!
    const depth = Number(row.n)
    return {
      now: row.db_now.getTime(),
      depth,
      capped: depth >= scanLimit,
      oldestDueMs: Math.max(0, Number(row.oldest_ms ?? 0)),
      nextDueAt: row.next_due === null ? null : toMillis(row.next_due),
      claimExpiresAt: row.claim_expires === null ? null : toMillis(row.claim_expires),
      openRuns: row.open_runs
    } satisfies SchedulerOutlook
  }, Effect.orDie)

  const pruneWebhookDeliveries = Effect.fn("WorkflowStore.pruneWebhookDeliveries")(function*(olderThanMs: number, limit: number) {
    const rows = yield* sql.unsafe(
      `DELETE FROM cloud_webhook_deliveries WHERE delivery_key IN (
         SELECT delivery_key FROM cloud_webhook_deliveries
         WHERE received_at < now() - ($1::double precision * interval '1 millisecond')
         ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ) RETURNING 1`,
      [olderThanMs, limit]
    )
    return rows.length
  }, Effect.orDie)

  return WorkflowStore.of({
    pruneWebhookDeliveries,
    create,
    list,
    get,
    setLifecycle,
    startRun,
    listRuns,
    rotateSecret,
    webhookTarget,
    claimDue,
    renewClaim,
    fireSlots,
    releaseClaims,
    reapExpiredClaims,
    syncRunOutcomes,
    outlook
  })
})

const layerWith = (options: WorkflowStoreOptions) => Layer.effect(WorkflowStore, make(options))

/** Run sessions get the `default` profile. */
export const layer = layerWith({ defaultProfileName: DEFAULT_PROFILE_NAME })

/** Run sessions get OPEN_COWORK_CLOUD_PROFILE_NAME (composition roots). */
export const layerConfig = Layer.unwrap(Effect.map(DefaultProfileName, (defaultProfileName) => layerWith({ defaultProfileName })))
