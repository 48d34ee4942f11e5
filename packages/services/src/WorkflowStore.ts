import {
  type CatchUpMode,
  Conflict,
  MAX_RUN_SUMMARY_LENGTH,
  newWorkflowId,
  newWorkflowRunId,
  NotFound,
  type OverlapPolicy,
  type RateLimited,
  Replayed,
  StaleClaim,
  webhookPath,
  type Workflow,
  type WorkflowRun,
  type WorkflowRunPage,
  type WorkflowRunStatus,
  type WorkflowPage,
  type WorkflowStep,
  type WorkflowTrigger
} from "@cowork/domain"
import { Clock, Context, Effect, Layer, Option, PubSub } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { admitInMemoryWindow, HOUR_MS } from "./QuotaRules.ts"
import { makeSessionStoreMemory } from "./SessionStoreMemory.ts"
import { nextSlot, type SlotPlan } from "./WorkflowSchedule.ts"

export interface CreateWorkflowInput {
  readonly title: string
  readonly instructions: string
  readonly agentName: string
  readonly skillNames: ReadonlyArray<string>
  readonly toolIds: ReadonlyArray<string>
  readonly steps: ReadonlyArray<WorkflowStep>
  /** Validated, every trigger with its id. */
  readonly triggers: ReadonlyArray<WorkflowTrigger>
  readonly overlapPolicy: OverlapPolicy
  readonly catchUpWindowSeconds: number
  readonly catchUpMode: CatchUpMode
  /** Each webhook trigger's signing secret, already sealed by the caller (the store never sees plaintext). */
  readonly sealedSecrets: ReadonlyArray<{ readonly triggerId: string; readonly sealed: Uint8Array }>
}

export interface PageQuery {
  readonly limit: number
  readonly cursor?: string | undefined
}

export type WorkflowAction = "pause" | "resume" | "archive"

/** How a run outside the schedule starts: a manual call, or a verified webhook delivery. */
export interface StartRunInput {
  readonly triggerType: "manual" | "webhook"
  readonly triggerId?: string | undefined
  readonly payload?: unknown
  /**
   * A webhook delivery's replay key (a digest of its signature): recorded in the same transaction as the run, so a
   * second delivery with the same signature — concurrent, on another replica, after a restart — is `Replayed`.
   */
  readonly deliveryKey?: string | undefined
  /** The org's `workflow_runs_per_hour`, counted in the same transaction as the run (`RateLimited` past it); absent: not checked. */
  readonly runsPerHour?: number | undefined
}

export interface WebhookTarget {
  readonly workflowId: string
  readonly orgId: string
  readonly lifecycle: "active" | "paused" | "archived"
  readonly triggers: ReadonlyArray<{ readonly triggerId: string; readonly enabled: boolean; readonly sealed: Uint8Array }>
}

/** A scheduler's hold on one due workflow, fenced by `epoch` like a session lease. */
export interface WorkflowClaim {
  readonly workflowId: string
  readonly orgId: string
  readonly schedulerId: string
  readonly epoch: number
  readonly triggers: ReadonlyArray<WorkflowTrigger>
  /** Every slot up to here was decided by an earlier tick (epoch ms). */
  readonly cursor: number
  readonly nextRunAt: number
  readonly overlapPolicy: OverlapPolicy
  readonly catchUpWindowMs: number
  readonly catchUpMode: CatchUpMode
}

export interface FireResult {
  /** Runs whose session and prompt were created now (in the same transaction as the run row). */
  readonly started: ReadonlyArray<WorkflowRun>
  /** Runs queued without a session (`buffer_one`), started when the running one finishes. */
  readonly buffered: number
  /** Slots not fired because of the overlap policy (recorded as cancelled runs). */
  readonly skippedByOverlap: number
  /** Slots not fired because the org's `workflow_runs_per_hour` was used up (recorded as cancelled runs, not retried). */
  readonly skippedByQuota: number
  /** Slots another claimer had already recorded (the unique key refused them): never a double fire. */
  readonly duplicates: number
}

export interface ClaimReapResult {
  readonly reaped: number
  /** The tick stopped at the drain cap with expired claims possibly left over. */
  readonly capHit: boolean
}

/**
 * What the scheduler needs to know to sleep until it has work (one read): the due backlog (its gauges), the next
 * slot of an unclaimed active workflow, the earliest claim expiry (a dead replica's claim to reap), and whether any
 * started run is still open (its outcome is followed by polling). Times are the store's clock, epoch ms.
 */
export interface SchedulerOutlook {
  /** The store's clock when it was read. */
  readonly now: number
  /** Active workflows due now and not claimed, counted up to the scan limit. */
  readonly depth: number
  readonly capped: boolean
  /** How long the oldest of them has been due (store clock), 0 when none. */
  readonly oldestDueMs: number
  /**
   * The earliest `nextRunAt` of an active workflow (due or not), claimed ones included: a replica whose claimer dies
   * before firing must still wake for that slot (it then retries every tick until the claim is reaped or released).
   * `null` when there is none.
   */
  readonly nextDueAt: number | null
  /** The earliest expiry of a held claim; `null` when no workflow is claimed. */
  readonly claimExpiresAt: number | null
  /** A started run (with a session) is still queued or running. */
  readonly openRuns: boolean
}

/**
 * Workflows, their runs and the scheduler's claims. Tenant calls are org-scoped (another org's workflow is
 * `NotFound`). Every run that starts creates its session and prompt command in the SAME transaction as the run row,
 * and a scheduled run's row is unique on `(workflow, slot)`: a slot fires at most once, whatever the replicas do.
 */
export class WorkflowStore extends Context.Service<WorkflowStore, {
  readonly create: (orgId: string, input: CreateWorkflowInput) => Effect.Effect<Workflow>
  readonly list: (orgId: string, query: PageQuery) => Effect.Effect<WorkflowPage>
  readonly get: (orgId: string, workflowId: string, recentRuns: number) => Effect.Effect<
    { readonly workflow: Workflow; readonly recentRuns: ReadonlyArray<WorkflowRun> },
    NotFound
  >
  /** `Conflict` for an illegal move (resuming an archived workflow). Idempotent otherwise. */
  readonly setLifecycle: (orgId: string, workflowId: string, action: WorkflowAction) => Effect.Effect<Workflow, NotFound | Conflict>
  /**
   * Starts a run now: run row, session, prompt command (and the delivery key, and the run counted in the org's
   * hourly window) in one transaction. `Conflict` when the workflow is archived (manual) or not active (webhook);
   * `Replayed` when the delivery key was seen before; `RateLimited` when `runsPerHour` is used up (nothing written).
   */
  readonly startRun: (
    orgId: string,
    workflowId: string,
    input: StartRunInput
  ) => Effect.Effect<WorkflowRun, NotFound | Conflict | Replayed | RateLimited>
  readonly listRuns: (orgId: string, workflowId: string, query: PageQuery) => Effect.Effect<WorkflowRunPage, NotFound>
  /** Replaces a webhook trigger's sealed secret. */
  readonly rotateSecret: (orgId: string, workflowId: string, triggerId: string, sealed: Uint8Array) => Effect.Effect<void, NotFound>
  /** What the public webhook route needs to verify a delivery (no org: the signature is the credential). */
  readonly webhookTarget: (workflowId: string) => Effect.Effect<Option.Option<WebhookTarget>>

  // -- the scheduler role ------------------------------------------------------------------------------------------

  /**
   * Claims up to `limit` active, unclaimed workflows whose next slot is due (`FOR UPDATE SKIP LOCKED`), each with a
   * new epoch and `expires = now + ttlMs` by the store's clock. Returns that clock's `now` for planning.
   */
  readonly claimDue: (schedulerId: string, limit: number, ttlMs: number) => Effect.Effect<{
    readonly now: number
    readonly claims: ReadonlyArray<WorkflowClaim>
  }>
  /** Extends a claim; `StaleClaim` when it is no longer this scheduler's live claim. */
  readonly renewClaim: (claim: WorkflowClaim, ttlMs: number) => Effect.Effect<void, StaleClaim>
  /**
   * Applies a plan under the claim, in one transaction: records the skipped slots, starts (or buffers, or skips by
   * overlap policy) each slot to fire, moves the cursor and `nextRunAt`, updates the workflow's latest-run fields,
   * and releases the claim. `StaleClaim` (nothing applied) when the claim is no longer live. With `runsPerHour`,
   * each slot that would start or buffer a run is counted in the org's hourly window first; past the quota the slot
   * is recorded as a cancelled run saying so (decided once, like every slot: never retried).
   */
  readonly fireSlots: (claim: WorkflowClaim, plan: SlotPlan, runsPerHour?: number) => Effect.Effect<FireResult, StaleClaim>
  /** Drain: gives up every claim this scheduler holds and wakes the other replicas, so they take them at once. */
  readonly releaseClaims: (schedulerId: string) => Effect.Effect<number>
  /** Clears expired claims (`SKIP LOCKED`), at most `drainCap` per call. */
  readonly reapExpiredClaims: (drainCap: number) => Effect.Effect<ClaimReapResult>
  /**
   * Moves up to `limit` open runs to their session's outcome: the prompt's ack → `completed` with the final assistant
   * message (truncated) as summary, failed/dead → `failed` with the reason, cancelled/aborted → `cancelled`; a run
   * whose command started → `running`. The workflow's latest-run fields follow in the same transaction, and a
   * buffered run starts when the one before it finishes. Returns the runs that changed.
   */
  readonly syncRunOutcomes: (limit: number) => Effect.Effect<number>
  /** The scheduler's outlook in one read; the due backlog is counted up to `scanLimit`. */
  readonly outlook: (scanLimit: number) => Effect.Effect<SchedulerOutlook>
  /**
   * Forgets webhook replay keys older than `olderThanMs`, at most `limit` per call. Safe once older than the
   * signature window (±5 min): such a delivery is refused for its timestamp before its key is looked up.
   */
  readonly pruneWebhookDeliveries: (olderThanMs: number, limit: number) => Effect.Effect<number>
}>()("cowork/WorkflowStore") {
  /** In memory, over the shared `MemoryDatabase` (runs' sessions and commands live there too); `Clock` drives claims. */
  static readonly layerMemory: Layer.Layer<WorkflowStore, never, MemoryDatabase> = Layer.effect(
    WorkflowStore,
    Effect.suspend(() => makeMemory)
  )
}

/** The prompt a run sends: the instructions, the steps, and the webhook payload when there is one. */
export const runPromptText = (
  workflow: { readonly instructions: string; readonly steps: ReadonlyArray<WorkflowStep> },
  payload: unknown
): string => {
  const parts = [workflow.instructions]
  if (workflow.steps.length > 0) {
    parts.push(
      "Steps:\n" + workflow.steps.map((step, index) => `${index + 1}. ${step.title}${step.detail === undefined ? "" : ` — ${step.detail}`}`).join("\n")
    )
  }
  if (payload !== undefined && payload !== null) parts.push(`Trigger payload:\n${JSON.stringify(payload).slice(0, 10_000)}`)
  return parts.join("\n\n")
}

/** A run summary: the final assistant message, whitespace-collapsed and truncated. */
export const summarize = (text: string, max: number): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`
}

/** The workflow tables of the shared `MemoryDatabase`. */
export interface MemoryWorkflowTables {
  readonly workflows: Map<string, MemoryWorkflow>
  readonly runs: Array<MemoryRun>
  /** Replay key → when it was recorded. */
  readonly deliveries: Map<string, number>
  /** Insertion order, breaking ties between rows created in the same millisecond (newest first). */
  readonly order: Map<string, number>
}

interface MemoryWorkflow {
  readonly id: string
  readonly orgId: string
  readonly input: CreateWorkflowInput
  lifecycle: "active" | "paused" | "archived"
  cursor: number
  nextRunAt: number | null
  claimedBy: string | null
  claimEpoch: number
  claimExpiresAt: number
  lastRunAt: number | null
  latestRunId: string | null
  latestRunStatus: WorkflowRunStatus | null
  latestRunSessionId: string | null
  readonly createdAt: number
  updatedAt: number
  readonly secrets: Map<string, Uint8Array>
}

interface MemoryRun {
  readonly id: string
  readonly workflowId: string
  sessionId: string | null
  commandId: string | null
  readonly triggerType: "manual" | "schedule" | "webhook"
  readonly triggerPayload: unknown
  readonly scheduledFor: number | null
  status: WorkflowRunStatus
  summary: string | null
  error: string | null
  readonly createdAt: number
  startedAt: number | null
  finishedAt: number | null
}

const isoOrNull = (millis: number | null) => (millis === null ? null : new Date(millis).toISOString())

const memoryCursor = {
  encode: (id: string) => Buffer.from(id, "utf8").toString("base64url"),
  decode: (cursor: string) => Buffer.from(cursor, "base64url").toString("utf8")
}

/**
 * The memory layer: every operation is one synchronous step after reading the `Clock`, so it is as atomic as the
 * Postgres transaction it mirrors (same fences, same unique slot key, same replay refusal).
 */
const makeMemory = Effect.gen(function*() {
  const db = yield* MemoryDatabase
  const { workflows, runs, deliveries, order } = db.workflowTables
  const sessions = makeSessionStoreMemory(db, "default")
  const nextOrder = () => order.size + 1
  /** Runs admitted per org per clock hour (the Pg layer keeps them in cloud_quota_windows). */
  const runWindows = new Map<string, number>()
  const admitRun = (orgId: string, runsPerHour: number | undefined, now: number) =>
    runsPerHour === undefined
      ? Effect.void
      : admitInMemoryWindow(runWindows, orgId, "workflow_runs_per_hour", 1, runsPerHour, HOUR_MS, now)

  const toWorkflow = (w: MemoryWorkflow): Workflow => {
    const latest = w.latestRunStatus
    return {
      id: w.id,
      title: w.input.title,
      instructions: w.input.instructions,
      agentName: w.input.agentName,
      skillNames: w.input.skillNames,
      toolIds: w.input.toolIds,
      steps: w.input.steps,
      status: w.lifecycle !== "active"
        ? w.lifecycle
        : latest === "queued" || latest === "running"
        ? "running"
        : latest === "failed"
        ? "failed"
        : "active",
      triggers: w.input.triggers,
      overlapPolicy: w.input.overlapPolicy,
      catchUpWindowSeconds: w.input.catchUpWindowSeconds,
      catchUpMode: w.input.catchUpMode,
      createdAt: new Date(w.createdAt).toISOString(),
      updatedAt: new Date(w.updatedAt).toISOString(),
      nextRunAt: w.lifecycle === "active" ? isoOrNull(w.nextRunAt) : null,
      lastRunAt: isoOrNull(w.lastRunAt),
      latestRunId: w.latestRunId,
      latestRunStatus: w.latestRunStatus,
      latestRunSessionId: w.latestRunSessionId,
      webhookUrl: w.input.triggers.some((t) => t.type === "webhook" && t.enabled) ? webhookPath(w.id) : null
    }
  }

  const toRun = (r: MemoryRun): WorkflowRun => ({
    id: r.id,
    workflowId: r.workflowId,
    sessionId: r.sessionId,
    triggerType: r.triggerType,
    triggerPayload: r.triggerPayload ?? null,
    scheduledFor: isoOrNull(r.scheduledFor),
    status: r.status,
    summary: r.summary,
    error: r.error,
    createdAt: new Date(r.createdAt).toISOString(),
    startedAt: isoOrNull(r.startedAt),
    finishedAt: isoOrNull(r.finishedAt)
  })

  /** Newest first, like the Pg keyset order (a sequence number breaks ties within one millisecond). */
  const newestFirst = (a: { id: string; createdAt: number }, b: { id: string; createdAt: number }) =>
    b.createdAt - a.createdAt || (order.get(b.id) ?? 0) - (order.get(a.id) ?? 0)

  const page = <T extends { id: string; createdAt: number }>(items: ReadonlyArray<T>, query: PageQuery) => {
    const sorted = [...items].sort(newestFirst)
    const after = query.cursor === undefined ? -1 : sorted.findIndex((item) => item.id === memoryCursor.decode(query.cursor!))
    const rest = sorted.slice(after + 1)
    const slice = rest.slice(0, query.limit)
    const last = slice[slice.length - 1]
    return { items: slice, nextCursor: rest.length > query.limit && last !== undefined ? memoryCursor.encode(last.id) : null, total: items.length }
  }

  const owned = (orgId: string, workflowId: string) => {
    const workflow = workflows.get(workflowId)
    return workflow === undefined || workflow.orgId !== orgId
      ? Effect.fail(new NotFound({ message: `workflow ${workflowId} not found` }))
      : Effect.succeed(workflow)
  }

  const startSession = (workflow: MemoryWorkflow, run: MemoryRun, now: number) =>
    Effect.gen(function*() {
      const session = yield* sessions.create(workflow.orgId, { title: workflow.input.title })
      const sessionId = session.id
      const { commandId } = yield* sessions.prompt(workflow.orgId, sessionId, {
        text: runPromptText(workflow.input, run.triggerPayload),
        idempotencyKey: `workflow-run:${run.id}`
      }).pipe(Effect.orDie)
      run.sessionId = sessionId
      run.commandId = commandId
      workflow.lastRunAt = now
      workflow.latestRunId = run.id
      workflow.latestRunStatus = "queued"
      workflow.latestRunSessionId = sessionId
      workflow.updatedAt = now
    })

  const addRun = (workflow: MemoryWorkflow, fields: {
    readonly triggerType: MemoryRun["triggerType"]
    readonly triggerPayload: unknown
    readonly scheduledFor: number | null
    readonly skipped?: string | undefined
  }, now: number): MemoryRun | undefined => {
    if (fields.scheduledFor !== null && runs.some((r) => r.workflowId === workflow.id && r.scheduledFor === fields.scheduledFor)) {
      return undefined
    }
    const run: MemoryRun = {
      id: newWorkflowRunId(),
      workflowId: workflow.id,
      sessionId: null,
      commandId: null,
      triggerType: fields.triggerType,
      triggerPayload: fields.triggerPayload,
      scheduledFor: fields.scheduledFor,
      status: fields.skipped === undefined ? "queued" : "cancelled",
      summary: fields.skipped ?? null,
      error: null,
      createdAt: now,
      startedAt: null,
      finishedAt: fields.skipped === undefined ? null : now
    }
    order.set(run.id, nextOrder())
    runs.push(run)
    return run
  }

  /** `NOTIFY cowork_commands 'workflow'`. */
  const workflowChanged = PubSub.publish(db.workflowChanges, undefined).pipe(Effect.asVoid)

  const liveClaim = (claim: WorkflowClaim, now: number) => {
    const workflow = workflows.get(claim.workflowId)
    return workflow !== undefined && workflow.claimedBy === claim.schedulerId && workflow.claimEpoch === claim.epoch &&
        workflow.claimExpiresAt > now
      ? workflow
      : undefined
  }

  return WorkflowStore.of({
    create: (orgId, input) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const workflow: MemoryWorkflow = {
          id: newWorkflowId(),
          orgId,
          input,
          lifecycle: "active",
          cursor: now,
          nextRunAt: nextSlot(input.triggers, now) ?? null,
          claimedBy: null,
          claimEpoch: 0,
          claimExpiresAt: Number.NEGATIVE_INFINITY,
          lastRunAt: null,
          latestRunId: null,
          latestRunStatus: null,
          latestRunSessionId: null,
          createdAt: now,
          updatedAt: now,
          secrets: new Map(input.sealedSecrets.map((s) => [s.triggerId, s.sealed]))
        }
        order.set(workflow.id, nextOrder())
        workflows.set(workflow.id, workflow)
        return toWorkflow(workflow)
      }).pipe(Effect.tap((workflow) => workflow.nextRunAt === null ? Effect.void : workflowChanged)),
    list: (orgId, query) =>
      Effect.sync(() => {
        const result = page([...workflows.values()].filter((w) => w.orgId === orgId), query)
        return { workflows: result.items.map(toWorkflow), nextCursor: result.nextCursor, totalEstimate: result.total }
      }),
    get: (orgId, workflowId, recent) =>
      Effect.map(owned(orgId, workflowId), (workflow) => ({
        workflow: toWorkflow(workflow),
        recentRuns: page(runs.filter((r) => r.workflowId === workflowId), { limit: recent }).items.map(toRun)
      })),
    setLifecycle: (orgId, workflowId, action) =>
      Effect.flatMap(owned(orgId, workflowId), (workflow) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (action === "archive") {
            if (workflow.lifecycle !== "archived") {
              workflow.lifecycle = "archived"
              workflow.nextRunAt = null
              workflow.claimedBy = null
              workflow.updatedAt = now
            }
          } else if (workflow.lifecycle === "archived") {
            return Effect.fail(new Conflict({ message: `workflow ${workflowId} is archived` }))
          } else if (action === "pause" && workflow.lifecycle === "active") {
            workflow.lifecycle = "paused"
            workflow.claimedBy = null
            workflow.updatedAt = now
          } else if (action === "resume" && workflow.lifecycle === "paused") {
            workflow.lifecycle = "active"
            workflow.cursor = now
            workflow.nextRunAt = nextSlot(workflow.input.triggers, now) ?? null
            workflow.updatedAt = now
            return Effect.as(workflowChanged, toWorkflow(workflow))
          }
          return Effect.succeed(toWorkflow(workflow))
        })),
    startRun: (orgId, workflowId, input) =>
      Effect.flatMap(owned(orgId, workflowId), (workflow) =>
        Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<WorkflowRun, Conflict | Replayed | RateLimited> => {
          if (workflow.lifecycle === "archived" || (input.triggerType === "webhook" && workflow.lifecycle !== "active")) {
            return Effect.fail(new Conflict({ message: `workflow ${workflowId} is ${workflow.lifecycle}` }))
          }
          if (input.deliveryKey !== undefined && deliveries.has(input.deliveryKey)) {
            return Effect.fail(new Replayed({ message: "this webhook signature was already accepted" }))
          }
          return Effect.flatMap(admitRun(orgId, input.runsPerHour, now), () => {
            if (input.deliveryKey !== undefined) deliveries.set(input.deliveryKey, now)
            const run = addRun(workflow, { triggerType: input.triggerType, triggerPayload: input.payload, scheduledFor: null }, now)!
            return startSession(workflow, run, now).pipe(Effect.andThen(workflowChanged), Effect.map(() => toRun(run)))
          })
        })),
    listRuns: (orgId, workflowId, query) =>
      Effect.map(owned(orgId, workflowId), () => {
        const result = page(runs.filter((r) => r.workflowId === workflowId), query)
        return { runs: result.items.map(toRun), nextCursor: result.nextCursor, totalEstimate: result.total }
      }),
    rotateSecret: (orgId, workflowId, triggerId, sealed) =>
      Effect.flatMap(owned(orgId, workflowId), (workflow) => {
        if (!workflow.input.triggers.some((t) => t.id === triggerId && t.type === "webhook")) {
          return Effect.fail(new NotFound({ message: `webhook trigger ${triggerId} not found` }))
        }
        workflow.secrets.set(triggerId, sealed)
        return Effect.void
      }),
    webhookTarget: (workflowId) =>
      Effect.sync(() => {
        const workflow = workflows.get(workflowId)
        if (workflow === undefined) return Option.none()
        return Option.some({
          workflowId,
          orgId: workflow.orgId,
          lifecycle: workflow.lifecycle,
          triggers: workflow.input.triggers.flatMap((t) => {
            const sealed = workflow.secrets.get(t.id)
            return t.type === "webhook" && sealed !== undefined ? [{ triggerId: t.id, enabled: t.enabled, sealed }] : []
          })
        })
      }),
    claimDue: (schedulerId, limit, ttlMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const due = [...workflows.values()]
          .filter((w) => w.lifecycle === "active" && w.claimedBy === null && w.nextRunAt !== null && w.nextRunAt <= now)
          .sort((a, b) => a.nextRunAt! - b.nextRunAt!)
          .slice(0, limit)
        const claims = due.map((w): WorkflowClaim => {
          w.claimedBy = schedulerId
          w.claimEpoch += 1
          w.claimExpiresAt = now + ttlMs
          return {
            workflowId: w.id,
            orgId: w.orgId,
            schedulerId,
            epoch: w.claimEpoch,
            triggers: w.input.triggers,
            cursor: w.cursor,
            nextRunAt: w.nextRunAt!,
            overlapPolicy: w.input.overlapPolicy,
            catchUpWindowMs: w.input.catchUpWindowSeconds * 1000,
            catchUpMode: w.input.catchUpMode
          }
        })
        return { now, claims }
      }),
    renewClaim: (claim, ttlMs) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const workflow = liveClaim(claim, now)
        if (workflow === undefined) {
          return Effect.fail(new StaleClaim({ workflowId: claim.workflowId, epoch: claim.epoch, operation: "renew" }))
        }
        workflow.claimExpiresAt = now + ttlMs
        return Effect.void
      }),
    fireSlots: (claim, plan, runsPerHour) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const workflow = liveClaim(claim, now)
        if (workflow === undefined) {
          return Effect.fail(new StaleClaim({ workflowId: claim.workflowId, epoch: claim.epoch, operation: "fire" }))
        }
        return Effect.gen(function*() {
          if (plan.skipped !== null) {
            const { count, countCapped, first, last } = plan.skipped
            addRun(workflow, {
              triggerType: "schedule",
              triggerPayload: { scheduledFor: new Date(last).toISOString(), skippedSlots: count, firstSkipped: new Date(first).toISOString() },
              scheduledFor: last,
              skipped: `skipped ${countCapped ? "at least " : ""}${count} slot(s) from ${new Date(first).toISOString()}: outside the catch-up window`
            }, now)
          }
          const open = runs.filter((r) => r.workflowId === workflow.id && (r.status === "queued" || r.status === "running"))
          let running = open.some((r) => r.sessionId !== null)
          let buffered = open.some((r) => r.sessionId === null)
          const result = { started: [] as Array<WorkflowRun>, buffered: 0, skippedByOverlap: 0, skippedByQuota: 0, duplicates: 0 }
          for (const slot of plan.fire) {
            let skipped: string | undefined
            let buffer = false
            let refused = false
            if (running && workflow.input.overlapPolicy === "skip") skipped = "skipped: the previous run is still in progress (overlap policy skip)"
            if (running && workflow.input.overlapPolicy === "buffer_one") {
              if (buffered) skipped = "skipped: a run is already waiting (overlap policy buffer_one)"
              else buffer = true
            }
            const duplicate = runs.some((r) => r.workflowId === workflow.id && r.scheduledFor === slot)
            if (skipped === undefined && !duplicate) {
              const admitted = yield* Effect.result(admitRun(workflow.orgId, runsPerHour, now))
              if (admitted._tag === "Failure") {
                skipped = `skipped: ${admitted.failure.message}`
                refused = true
              }
            }
            const run = addRun(workflow, {
              triggerType: "schedule",
              triggerPayload: { scheduledFor: new Date(slot).toISOString() },
              scheduledFor: slot,
              skipped
            }, now)
            if (run === undefined) {
              result.duplicates++
            } else if (refused) {
              result.skippedByQuota++
            } else if (skipped !== undefined) {
              result.skippedByOverlap++
            } else if (buffer) {
              result.buffered++
              buffered = true
            } else {
              yield* startSession(workflow, run, now)
              result.started.push(toRun(run))
              running = true
            }
          }
          workflow.cursor = plan.cursor
          workflow.nextRunAt = plan.nextRunAt
          workflow.claimedBy = null
          workflow.claimExpiresAt = Number.NEGATIVE_INFINITY
          workflow.updatedAt = now
          return result satisfies FireResult
        })
      }),
    releaseClaims: (schedulerId) =>
      Effect.sync(() => {
        let released = 0
        for (const workflow of workflows.values()) {
          if (workflow.claimedBy !== schedulerId) continue
          workflow.claimedBy = null
          workflow.claimExpiresAt = Number.NEGATIVE_INFINITY
          released++
        }
        return released
      }).pipe(Effect.tap((released) => released > 0 ? workflowChanged : Effect.void)),
    reapExpiredClaims: (drainCap) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const expired = [...workflows.values()]
          .filter((w) => w.claimedBy !== null && w.claimExpiresAt <= now)
          .sort((a, b) => a.claimExpiresAt - b.claimExpiresAt)
          .slice(0, drainCap)
        for (const workflow of expired) {
          workflow.claimedBy = null
          workflow.claimExpiresAt = Number.NEGATIVE_INFINITY
        }
        return { reaped: expired.length, capHit: expired.length >= drainCap }
      }),
    syncRunOutcomes: (limit) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        let changed = 0
        const open = runs.filter((r) => (r.status === "queued" || r.status === "running") && r.sessionId !== null)
        for (const run of open) {
          if (changed >= limit) break
          const command = db.commands.find((c) => c.id === run.commandId)
          if (command === undefined || command.status === "pending" || (command.status === "running" && run.status === "running")) continue
          changed++
          const workflow = workflows.get(run.workflowId)!
          if (command.status === "running") {
            run.status = "running"
          } else if (command.status === "acked") {
            run.status = "completed"
            const replies = [...(db.projections.get(run.sessionId!)?.messages.values() ?? [])]
              .filter((m) => m.role === "assistant")
              .sort((a, b) => a.sequence - b.sequence)
            const last = replies[replies.length - 1]
            run.summary = last === undefined ? null : summarize(last.text, MAX_RUN_SUMMARY_LENGTH)
          } else if (command.status === "cancelled") {
            run.status = "cancelled"
            run.error = "the session was aborted"
          } else {
            run.status = "failed"
            run.error = command.lastError ?? `the prompt ended ${command.status}`
          }
          run.startedAt = run.startedAt ?? now
          if (run.status !== "running") run.finishedAt = now
          if (workflow.latestRunId === run.id) {
            workflow.latestRunStatus = run.status
            workflow.updatedAt = now
          }
          if (run.status !== "running") {
            const next = runs.find((r) => r.workflowId === workflow.id && r.status === "queued" && r.sessionId === null)
            if (next !== undefined) yield* startSession(workflow, next, now)
          }
        }
        return changed
      }),
    pruneWebhookDeliveries: (olderThanMs, limit) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        let pruned = 0
        for (const [key, at] of deliveries) {
          if (pruned >= limit) break
          if (at < now - olderThanMs) {
            deliveries.delete(key)
            pruned++
          }
        }
        return pruned
      }),
    outlook: (scanLimit) =>
      Effect.map(Clock.currentTimeMillis, (now): SchedulerOutlook => {
        const scheduled = [...workflows.values()].filter((w) => w.lifecycle === "active" && w.nextRunAt !== null)
        const unclaimed = scheduled.filter((w) => w.claimedBy === null)
        const due = unclaimed.filter((w) => w.nextRunAt! <= now).slice(0, scanLimit)
        const oldest = due.reduce((min, w) => Math.min(min, w.nextRunAt!), now)
        const claimed = [...workflows.values()].filter((w) => w.claimedBy !== null)
        return {
          now,
          depth: due.length,
          capped: due.length >= scanLimit,
          oldestDueMs: now - oldest,
          nextDueAt: scheduled.length === 0 ? null : Math.min(...scheduled.map((w) => w.nextRunAt!)),
          claimExpiresAt: claimed.length === 0 ? null : Math.min(...claimed.map((w) => w.claimExpiresAt)),
          openRuns: runs.some((r) => (r.status === "queued" || r.status === "running") && r.sessionId !== null)
        }
      })
  })
})
