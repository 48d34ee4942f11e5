import { Schema } from "effect"
import { makeId } from "./Ids.ts"
import { isStorableText } from "./Input.ts"

/**
 * Workflows: a prompt (`instructions`) run as a new session by a manual call, a schedule or a signed webhook.
 * Field names and statuses are the ones existing clients send and read (issue 10; the routes in WorkflowsApi.ts).
 */

const MAX_WORKFLOW_TITLE_LENGTH = 200
const MAX_WORKFLOW_INSTRUCTIONS_LENGTH = 50_000
const MAX_WORKFLOW_TRIGGERS = 20
const MAX_WORKFLOW_STEPS = 50
/** Longest run summary kept: the final assistant message, truncated. */
export const MAX_RUN_SUMMARY_LENGTH = 500

const noNul = isStorableText
const Name = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200), noNul)
const ShortId = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))

const WorkflowScheduleType = Schema.Literals(["one_time", "daily", "weekly", "monthly", "cron"])
type WorkflowScheduleType = typeof WorkflowScheduleType.Type

/**
 * One struct for both schedule shapes, so a bad value is a 400 naming its own field: the calendar shape
 * `{type: one_time|daily|weekly|monthly, timezone, runAtHour, runAtMinute, dayOfWeek?, dayOfMonth?, startAt?}` and
 * the cron shape `{type: "cron", expression, timezone}`. Which fields each type needs, the cron expression and the
 * IANA zone are checked by `WorkflowSchedule.validateTriggers` (packages/services).
 */
export const WorkflowSchedule = Schema.Struct({
  type: WorkflowScheduleType,
  timezone: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)),
  runAtHour: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 23 }))),
  runAtMinute: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 59 }))),
  dayOfWeek: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 6 }))),
  dayOfMonth: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 31 }))),
  startAt: Schema.optional(Schema.String.check(Schema.isMaxLength(40))),
  expression: Schema.optional(Schema.String.check(Schema.isMaxLength(200), noNul))
})
export type WorkflowSchedule = typeof WorkflowSchedule.Type

const WorkflowTriggerType = Schema.Literals(["manual", "schedule", "webhook"])
type WorkflowTriggerType = typeof WorkflowTriggerType.Type

export const WorkflowTriggerInput = Schema.Struct({
  id: Schema.optional(ShortId),
  type: WorkflowTriggerType,
  enabled: Schema.Boolean,
  schedule: Schema.optional(WorkflowSchedule)
})
export type WorkflowTriggerInput = typeof WorkflowTriggerInput.Type

export const WorkflowTrigger = Schema.Struct({
  id: Schema.String,
  type: WorkflowTriggerType,
  enabled: Schema.Boolean,
  schedule: Schema.optional(WorkflowSchedule)
})
export type WorkflowTrigger = typeof WorkflowTrigger.Type

export const WorkflowStep = Schema.Struct({
  id: ShortId,
  title: Schema.String.check(Schema.isMaxLength(200), noNul),
  detail: Schema.optional(Schema.String.check(Schema.isMaxLength(5_000), noNul))
})
export type WorkflowStep = typeof WorkflowStep.Type

/** `skip` (default): no new scheduled run while one is queued or running; `buffer_one`: keep one waiting; `allow`. */
export const OverlapPolicy = Schema.Literals(["skip", "buffer_one", "allow"])
export type OverlapPolicy = typeof OverlapPolicy.Type

/** After downtime, slots missed within the window fire once `each`, or only the `latest`; older ones are skipped. */
export const CatchUpMode = Schema.Literals(["each", "latest"])
export type CatchUpMode = typeof CatchUpMode.Type

export const DEFAULT_CATCH_UP_WINDOW_SECONDS = 3_600
const MAX_CATCH_UP_WINDOW_SECONDS = 7 * 24 * 3_600

export const CreateWorkflowBody = Schema.Struct({
  title: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_WORKFLOW_TITLE_LENGTH), noNul),
  instructions: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_WORKFLOW_INSTRUCTIONS_LENGTH), noNul),
  agentName: Name,
  skillNames: Schema.optional(Schema.Array(Name).check(Schema.isMaxLength(50))),
  toolIds: Schema.optional(Schema.Array(Name).check(Schema.isMaxLength(50))),
  steps: Schema.optional(Schema.Array(WorkflowStep).check(Schema.isMaxLength(MAX_WORKFLOW_STEPS))),
  triggers: Schema.Array(WorkflowTriggerInput).check(Schema.isMaxLength(MAX_WORKFLOW_TRIGGERS)),
  overlapPolicy: Schema.optional(OverlapPolicy),
  catchUpWindowSeconds: Schema.optional(
    Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: MAX_CATCH_UP_WINDOW_SECONDS }))
  ),
  catchUpMode: Schema.optional(CatchUpMode)
})
export type CreateWorkflowBody = typeof CreateWorkflowBody.Type

const WorkflowStatus = Schema.Literals(["active", "paused", "running", "failed", "archived"])
type WorkflowStatus = typeof WorkflowStatus.Type

export const WorkflowRunStatus = Schema.Literals(["queued", "running", "completed", "failed", "cancelled"])
export type WorkflowRunStatus = typeof WorkflowRunStatus.Type

export const Workflow = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  instructions: Schema.String,
  agentName: Schema.String,
  skillNames: Schema.Array(Schema.String),
  toolIds: Schema.Array(Schema.String),
  steps: Schema.Array(WorkflowStep),
  status: WorkflowStatus,
  triggers: Schema.Array(WorkflowTrigger),
  overlapPolicy: OverlapPolicy,
  catchUpWindowSeconds: Schema.Number,
  catchUpMode: CatchUpMode,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  nextRunAt: Schema.NullOr(Schema.String),
  lastRunAt: Schema.NullOr(Schema.String),
  latestRunId: Schema.NullOr(Schema.String),
  latestRunStatus: Schema.NullOr(WorkflowRunStatus),
  latestRunSessionId: Schema.NullOr(Schema.String),
  /** Path of the signed webhook trigger (`/webhooks/workflows/:id`), null without an enabled webhook trigger. */
  webhookUrl: Schema.NullOr(Schema.String)
})
export type Workflow = typeof Workflow.Type

export const WorkflowRun = Schema.Struct({
  id: Schema.String,
  workflowId: Schema.String,
  sessionId: Schema.NullOr(Schema.String),
  triggerType: WorkflowTriggerType,
  triggerPayload: Schema.NullOr(Schema.Unknown),
  /** The schedule slot a scheduled run stands for (unique per workflow); null for manual and webhook runs. */
  scheduledFor: Schema.NullOr(Schema.String),
  status: WorkflowRunStatus,
  summary: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  startedAt: Schema.NullOr(Schema.String),
  finishedAt: Schema.NullOr(Schema.String)
})
export type WorkflowRun = typeof WorkflowRun.Type

export const WebhookSecret = Schema.Struct({ triggerId: Schema.String, secret: Schema.String })
export type WebhookSecret = typeof WebhookSecret.Type

export const WorkflowCreated = Schema.Struct({
  workflow: Workflow,
  /** Each webhook trigger's signing secret, shown only here and on rotation. */
  webhookSecrets: Schema.Array(WebhookSecret)
})

export const WorkflowEnvelope = Schema.Struct({ workflow: Workflow })
export const WorkflowDetail = Schema.Struct({ workflow: Workflow, recentRuns: Schema.Array(WorkflowRun) })
export const WorkflowPage = Schema.Struct({
  workflows: Schema.Array(Workflow),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})
export type WorkflowPage = typeof WorkflowPage.Type
export const WorkflowRunEnvelope = Schema.Struct({ run: WorkflowRun })
export const WorkflowRunPage = Schema.Struct({
  runs: Schema.Array(WorkflowRun),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})
export type WorkflowRunPage = typeof WorkflowRunPage.Type

/** A scheduler's write under a claim it no longer holds (expired and reaped, or taken over): refused, never applied. */
export class StaleClaim extends Schema.TaggedError<StaleClaim>()("StaleClaim", {
  workflowId: Schema.String,
  epoch: Schema.Number,
  operation: Schema.String
}, { httpApiStatus: 409 }) {}

/** A webhook delivery whose signature was accepted before (durably recorded): refused, never a second run. */
export class Replayed extends Schema.TaggedError<Replayed>()("Replayed", {
  message: Schema.String
}, { httpApiStatus: 409 }) {}

/** A webhook delivery refused; `reason` is the metric label (never shown to the caller beyond the status). */
export const WebhookRejectionReason = Schema.Literals([
  "missing_signature",
  "stale_timestamp",
  "bad_signature",
  "replayed",
  "body_too_large",
  "rate_limited",
  "not_found",
  "disabled"
])
export type WebhookRejectionReason = typeof WebhookRejectionReason.Type

export const newWorkflowId = (): string => makeId("wf")
export const newWorkflowRunId = (): string => makeId("wfr")
export const newTriggerId = (): string => makeId("trg")
export const webhookPath = (workflowId: string): string => `/webhooks/workflows/${workflowId}`
