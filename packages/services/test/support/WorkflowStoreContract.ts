import type { WorkflowTrigger } from "@cowork/domain"
import {
  CommandQueue,
  type CreateWorkflowInput,
  EventLog,
  LeaseStore,
  planSlots,
  SessionStore,
  type WorkflowClaim,
  WorkflowStore
} from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Option, Schedule } from "effect"

/**
 * What every WorkflowStore does, run against the in-memory layer and the Postgres one (real clock: `it.live`).
 * Runs are driven to their outcome through the real session pipeline services (lease, command queue, event log),
 * so "the session's outcome becomes the run's status" is checked end to end on both.
 */

const everySecond: WorkflowTrigger = {
  id: "tick",
  type: "schedule",
  enabled: true,
  schedule: { type: "cron", expression: "* * * * * *", timezone: "UTC" }
}

export const workflowInput = (overrides: Partial<CreateWorkflowInput> = {}): CreateWorkflowInput => ({
  title: "nightly report",
  instructions: "summarise the day",
  agentName: "build",
  skillNames: [],
  toolIds: [],
  steps: [{ id: "s1", title: "collect" }],
  triggers: [{ id: "manual", type: "manual", enabled: true }],
  overlapPolicy: "allow",
  catchUpWindowSeconds: 3_600,
  catchUpMode: "each",
  sealedSecrets: [],
  ...overrides
})

/** Polls `claimDue` until the workflow is due and claimed (its 1-second slot has come), under a deadline. */
const claimWhenDue = (schedulerId: string, workflowId: string, ttlMs = 30_000) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const { now, claims } = yield* store.claimDue(schedulerId, 100, ttlMs)
    const claim = claims.find((c) => c.workflowId === workflowId)
    if (claim === undefined) return yield* Effect.fail("not due yet" as const)
    return { now, claim }
  }).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }), Effect.orDie)

/** Completes a run's prompt as a worker would: claim the session's lease, take the command, append and ack. */
const completeRun = (sessionId: string, outcome: "acked" | "failed", reply: string) =>
  Effect.gen(function*() {
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const log = yield* EventLog
    const claimed = yield* leases.claim(`worker-${sessionId}`, 500, 30_000, 3)
    const lease = claimed.find((l) => l.sessionId === sessionId)
    assert.isDefined(lease, "the run's session is runnable")
    const command = Option.getOrThrow(yield* queue.next(lease!))
    yield* log.append(
      lease!,
      outcome === "acked"
        ? [{ type: "assistant.message", payload: { messageId: `m-${command.id}`, text: reply, final: true }, commandId: command.id, attempt: 1 }]
        : [{ type: "runtime.error", payload: { message: reply }, commandId: command.id, attempt: 1 }],
      { commandId: command.id, outcome, ...(outcome === "failed" ? { error: reply } : {}) }
    )
    for (const other of claimed) if (other !== lease) yield* leases.expire(other).pipe(Effect.ignore)
    yield* leases.releaseIfIdle(lease!).pipe(Effect.ignore)
    return command
  })

export const workflowStoreContract = <E, R = never>(
  name: string,
  storeLayer: Layer.Layer<WorkflowStore | LeaseStore | CommandQueue | EventLog | SessionStore | R, E>,
  makeOrg: Effect.Effect<string, never, WorkflowStore | R>
) =>
  layer(storeLayer, { timeout: 60_000, excludeTestServices: true })(`WorkflowStore contract: ${name}`, (it) => {
    it.effect("create, keyset pages, get; another org's workflow is NotFound everywhere", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const other = yield* makeOrg
        const ids: Array<string> = []
        for (let i = 0; i < 5; i++) ids.push((yield* store.create(org, workflowInput({ title: `wf ${i}` }))).id)
        const first = yield* store.list(org, { limit: 2 })
        assert.strictEqual(first.totalEstimate, 5)
        assert.strictEqual(first.workflows.length, 2)
        const seen = [...first.workflows.map((w) => w.id)]
        let cursor = first.nextCursor
        while (cursor !== null) {
          const page = yield* store.list(org, { limit: 2, cursor })
          seen.push(...page.workflows.map((w) => w.id))
          cursor = page.nextCursor
        }
        assert.deepStrictEqual([...seen].sort(), [...ids].sort(), "every workflow once across pages")
        assert.deepStrictEqual(seen, [...ids].reverse(), "newest first")

        const { workflow } = yield* store.get(org, ids[0]!, 5)
        assert.deepInclude(workflow, { title: "wf 0", status: "active", agentName: "build", nextRunAt: null, webhookUrl: null })
        assert.strictEqual((yield* store.list(other, { limit: 10 })).totalEstimate, 0)
        assert.strictEqual((yield* Effect.flip(store.get(other, ids[0]!, 5)))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(store.startRun(other, ids[0]!, { triggerType: "manual" })))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(store.setLifecycle(other, ids[0]!, "pause")))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(store.listRuns(other, ids[0]!, { limit: 5 })))._tag, "NotFound")
      }))

    it.effect("a manual run is a session with the prompt; its ack completes the run with the reply as summary", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const created = yield* store.create(org, workflowInput())
        const run = yield* store.startRun(org, created.id, { triggerType: "manual" })
        assert.deepInclude(run, { status: "queued", triggerType: "manual", workflowId: created.id, scheduledFor: null })
        assert.isNotNull(run.sessionId)
        const detail = yield* store.get(org, created.id, 5)
        assert.deepInclude(detail.workflow, { status: "running", latestRunId: run.id, latestRunStatus: "queued", latestRunSessionId: run.sessionId })

        const command = yield* completeRun(run.sessionId!, "acked", "all   done\n today")
        assert.include(command.payload.text ?? "", "summarise the day")
        assert.include(command.payload.text ?? "", "1. collect")
        yield* store.syncRunOutcomes(100)
        const after = yield* store.get(org, created.id, 5)
        assert.deepInclude(after.recentRuns[0]!, { id: run.id, status: "completed", summary: "all done today", error: null })
        assert.isNotNull(after.recentRuns[0]!.finishedAt)
        assert.deepInclude(after.workflow, { status: "active", latestRunStatus: "completed" })

        const failing = yield* store.startRun(org, created.id, { triggerType: "manual" })
        yield* completeRun(failing.sessionId!, "failed", "the model is down")
        yield* store.syncRunOutcomes(100)
        const failed = (yield* store.listRuns(org, created.id, { limit: 1 })).runs[0]!
        assert.deepInclude(failed, { id: failing.id, status: "failed" })
        assert.include(failed.error ?? "", "the model is down")
        assert.strictEqual((yield* store.get(org, created.id, 1)).workflow.status, "failed")
      }))

    it.effect("aborting a run's session cancels the run", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const created = yield* store.create(org, workflowInput())
        const run = yield* store.startRun(org, created.id, { triggerType: "manual" })
        yield* (yield* SessionStore).abort(org, run.sessionId!)
        yield* store.syncRunOutcomes(100)
        const after = yield* store.get(org, created.id, 1)
        assert.deepInclude(after.recentRuns[0]!, { id: run.id, status: "cancelled" })
        assert.isNotNull(after.recentRuns[0]!.finishedAt)
        assert.strictEqual(after.workflow.latestRunStatus, "cancelled")
      }))

    it.effect("lifecycle: pause / resume / archive; an archived workflow refuses runs and resume", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const created = yield* store.create(org, workflowInput({ triggers: [everySecond] }))
        assert.isNotNull(created.nextRunAt)
        assert.strictEqual((yield* store.setLifecycle(org, created.id, "pause")).status, "paused")
        assert.strictEqual((yield* store.setLifecycle(org, created.id, "pause")).status, "paused", "idempotent")
        const resumed = yield* store.setLifecycle(org, created.id, "resume")
        assert.deepInclude(resumed, { status: "active" })
        assert.isNotNull(resumed.nextRunAt)
        const archived = yield* store.setLifecycle(org, created.id, "archive")
        assert.deepInclude(archived, { status: "archived", nextRunAt: null })
        assert.strictEqual((yield* Effect.flip(store.setLifecycle(org, created.id, "resume")))._tag, "Conflict")
        assert.strictEqual((yield* Effect.flip(store.startRun(org, created.id, { triggerType: "manual" })))._tag, "Conflict")
      }))

    it.effect("webhook deliveries: one run per delivery key, a replay is refused and leaves nothing behind", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const sealed = new Uint8Array([1, 2, 3])
        const created = yield* store.create(org, workflowInput({
          triggers: [{ id: "hook", type: "webhook", enabled: true }],
          sealedSecrets: [{ triggerId: "hook", sealed }]
        }))
        assert.strictEqual(created.webhookUrl, `/webhooks/workflows/${created.id}`)
        const target = Option.getOrThrow(yield* store.webhookTarget(created.id))
        assert.deepStrictEqual(target.triggers.map((t) => [t.triggerId, t.enabled, [...t.sealed]]), [["hook", true, [1, 2, 3]]])
        assert.strictEqual(target.orgId, org)

        const deliveries = yield* Effect.all(
          Array.from({ length: 5 }, () =>
            Effect.result(store.startRun(org, created.id, { triggerType: "webhook", triggerId: "hook", payload: { n: 1 }, deliveryKey: `key-${created.id}` }))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(deliveries.filter((d) => d._tag === "Success").length, 1, "concurrent identical deliveries: one run")
        assert.isTrue(deliveries.every((d) => d._tag === "Success" || d.failure._tag === "Replayed"))
        const runs = yield* store.listRuns(org, created.id, { limit: 10 })
        assert.strictEqual(runs.totalEstimate, 1)
        assert.deepInclude(runs.runs[0]!, { triggerType: "webhook", triggerPayload: { n: 1 } })

        assert.strictEqual(yield* store.pruneWebhookDeliveries(3_600_000, 100), 0, "a fresh replay key is kept")
        const replayed = yield* Effect.flip(store.startRun(org, created.id, { triggerType: "webhook", deliveryKey: `key-${created.id}` }))
        assert.strictEqual(replayed._tag, "Replayed")

        yield* store.rotateSecret(org, created.id, "hook", new Uint8Array([9]))
        assert.deepStrictEqual([...Option.getOrThrow(yield* store.webhookTarget(created.id)).triggers[0]!.sealed], [9])
        assert.strictEqual((yield* Effect.flip(store.rotateSecret(org, created.id, "nope", sealed)))._tag, "NotFound")
        // Past retention the key is forgotten (the signature's timestamp window refuses such a delivery first).
        assert.isAtLeast(yield* store.pruneWebhookDeliveries(-60_000, 1_000), 1)
        yield* store.startRun(org, created.id, { triggerType: "webhook", deliveryKey: `key-${created.id}` })

        yield* store.setLifecycle(org, created.id, "pause")
        const paused = yield* Effect.flip(store.startRun(org, created.id, { triggerType: "webhook", deliveryKey: `other-${created.id}` }))
        assert.strictEqual(paused._tag, "Conflict")
      }))

    it.effect("claims: a due slot fires once even when two claimers race; a reaped claim is stale", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const created = yield* store.create(org, workflowInput({ triggers: [everySecond] }))
        const { now, claim } = yield* claimWhenDue("sched-a", created.id)
        assert.deepStrictEqual(
          (yield* store.claimDue("sched-b", 100, 30_000)).claims.filter((c) => c.workflowId === created.id),
          [],
          "a claimed workflow is not claimable"
        )
        const plan = planSlots({ triggers: claim.triggers, cursor: claim.cursor, now, catchUpWindowMs: 3_600_000, catchUpMode: "each" })
        assert.isAtLeast(plan.fire.length, 1)

        // Another claimer replays the same slots under a forged claim of its own (as after a reap): the unique
        // (workflow, slot) key refuses every one of them.
        const fired = yield* store.fireSlots(claim, plan)
        assert.strictEqual(fired.started.length, plan.fire.length)
        assert.strictEqual((yield* Effect.flip(store.fireSlots(claim, plan)))._tag, "StaleClaim", "a released claim is stale")

        const again = yield* claimWhenDue("sched-b", created.id)
        const replay = yield* store.fireSlots(again.claim, { ...plan, cursor: plan.cursor })
        assert.strictEqual(replay.started.length, 0)
        assert.strictEqual(replay.duplicates, plan.fire.length, "the unique slot key refuses a second fire")

        const runs = (yield* store.listRuns(org, created.id, { limit: 100 })).runs
        const slots = runs.map((r) => r.scheduledFor)
        assert.strictEqual(new Set(slots).size, slots.length, "one run per slot")
        assert.isTrue(runs.every((r) => r.triggerType === "schedule" && r.sessionId !== null))

        // Expired claim: reaped, and its holder's writes are refused with StaleClaim.
        const expiring = yield* claimWhenDue("sched-c", created.id, -1_000)
        const reaped = yield* store.reapExpiredClaims(1_000)
        assert.isAtLeast(reaped.reaped, 1)
        assert.strictEqual((yield* Effect.flip(store.renewClaim(expiring.claim, 30_000)))._tag, "StaleClaim")
        assert.strictEqual((yield* Effect.flip(store.fireSlots(expiring.claim, plan)))._tag, "StaleClaim")
      }))

    it.effect("the reaper stops at its drain cap; releaseClaims frees a draining scheduler's claims", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const ids: Array<string> = []
        for (let i = 0; i < 3; i++) ids.push((yield* store.create(org, workflowInput({ triggers: [everySecond] }))).id)
        const claimed = new Set<string>()
        yield* Effect.gen(function*() {
          const { claims } = yield* store.claimDue("expired", 100, -1_000)
          for (const claim of claims) claimed.add(claim.workflowId)
          if (!ids.every((id) => claimed.has(id))) return yield* Effect.fail("not due yet" as const)
        }).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }), Effect.orDie)
        const first = yield* store.reapExpiredClaims(2)
        assert.deepStrictEqual(first, { reaped: 2, capHit: true })
        const rest = yield* store.reapExpiredClaims(1_000)
        assert.isAtLeast(rest.reaped, 1)

        const held = yield* claimWhenDue("draining", ids[0]!)
        assert.isAtLeast(yield* store.releaseClaims("draining"), 1)
        assert.strictEqual((yield* Effect.flip(store.renewClaim(held.claim, 1_000)))._tag, "StaleClaim")
        const backlog = yield* store.outlook(1_000)
        assert.isAtLeast(backlog.depth, 1, "released and due: counted in the due backlog")
      }))

    it.effect("workflow_runs_per_hour: a manual run past it is RateLimited and writes nothing; a replay costs no run; other orgs unaffected", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const other = yield* makeOrg
        const created = yield* store.create(org, workflowInput({
          triggers: [{ id: "hook", type: "webhook", enabled: true }],
          sealedSecrets: [{ triggerId: "hook", sealed: new Uint8Array([1]) }]
        }))
        yield* store.startRun(org, created.id, { triggerType: "webhook", deliveryKey: `q-${created.id}`, runsPerHour: 2 })
        const replay = yield* Effect.flip(store.startRun(org, created.id, { triggerType: "webhook", deliveryKey: `q-${created.id}`, runsPerHour: 2 }))
        assert.strictEqual(replay._tag, "Replayed", "a replay is refused and not counted")
        yield* store.startRun(org, created.id, { triggerType: "manual", runsPerHour: 2 })
        const refused = yield* Effect.flip(store.startRun(org, created.id, { triggerType: "manual", runsPerHour: 2 }))
        assert.strictEqual(refused._tag, "RateLimited")
        if (refused._tag === "RateLimited") {
          assert.deepStrictEqual(refused.details, { quota: "workflow_runs_per_hour", limit: 2 })
          assert.isAbove(refused.retryAfterMs, 0)
          assert.isAtMost(refused.retryAfterMs, 3_600_000)
        }
        assert.strictEqual((yield* store.listRuns(org, created.id, { limit: 10 })).totalEstimate, 2, "the refusal recorded no run")
        assert.strictEqual((yield* store.startRun(org, created.id, { triggerType: "manual" })).status, "queued", "no limit given: not checked")

        const theirs = yield* store.create(other, workflowInput())
        for (let i = 0; i < 2; i++) yield* store.startRun(other, theirs.id, { triggerType: "manual", runsPerHour: 2 })
      }))

    it.effect("workflow_runs_per_hour at a scheduled fire: slots past it are recorded as cancelled runs saying so, decided once", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const created = yield* store.create(org, workflowInput({ triggers: [everySecond] }))
        const { now, claim } = yield* claimWhenDue("quota", created.id)
        // Three slots of the last seconds, as after a short outage; the org has one run left this hour.
        const plan = { skipped: null, fire: [now - 3_000, now - 2_000, now - 1_000].map((t) => Math.floor(t / 1000) * 1000), cursor: now, nextRunAt: now + 1_000 }
        yield* store.startRun(org, created.id, { triggerType: "manual", runsPerHour: 2 })
        const fired = yield* store.fireSlots(claim, plan, 2)
        assert.deepInclude(fired, { buffered: 0, skippedByOverlap: 0, skippedByQuota: 2, duplicates: 0 })
        assert.strictEqual(fired.started.length, 1)
        const runs = (yield* store.listRuns(org, created.id, { limit: 10 })).runs.filter((r) => r.triggerType === "schedule")
        const refused = runs.filter((r) => r.status === "cancelled")
        assert.strictEqual(refused.length, 2)
        assert.isTrue(refused.every((r) => r.sessionId === null && (r.summary ?? "").includes("workflow runs per hour quota (2)")))
        assert.isTrue(refused.every((r) => r.finishedAt !== null))

        // The same slots under a new claim: all duplicates, none counted again, nothing retried.
        const again = yield* claimWhenDue("quota-2", created.id)
        const replay = yield* store.fireSlots(again.claim, plan, 1_000)
        assert.deepInclude(replay, { skippedByQuota: 0, duplicates: 3 })
        assert.strictEqual(replay.started.length, 0)
        assert.strictEqual((yield* store.listRuns(org, created.id, { limit: 10 })).totalEstimate, 4)
      }))

    it.effect("workflow_runs_per_hour: concurrent fires of one org's workflows never admit past the quota together", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const ids: Array<string> = []
        for (let i = 0; i < 4; i++) ids.push((yield* store.create(org, workflowInput({ triggers: [everySecond] }))).id)
        const held = new Map<string, WorkflowClaim>()
        let now = 0
        yield* Effect.gen(function*() {
          const due = yield* store.claimDue("race", 100, 30_000)
          now = due.now
          for (const claim of due.claims) if (ids.includes(claim.workflowId)) held.set(claim.workflowId, claim)
          if (held.size < ids.length) return yield* Effect.fail("not due yet" as const)
        }).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }), Effect.orDie)
        const plan = { skipped: null, fire: [now - 2_000, now - 1_000].map((t) => Math.floor(t / 1000) * 1000), cursor: now, nextRunAt: now + 1_000 }
        const fired = yield* Effect.all([...held.values()].map((claim) => store.fireSlots(claim, plan, 5)), { concurrency: "unbounded" })
        assert.strictEqual(fired.reduce((n, r) => n + r.started.length, 0), 5, "5 of the 8 slots started")
        assert.strictEqual(fired.reduce((n, r) => n + r.skippedByQuota, 0), 3, "the other 3 were refused by the quota")
      }))

    it.effect("the outlook: the next due slot, the earliest claim expiry and open runs, by the store's clock", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const daily = yield* store.create(org, workflowInput({
          triggers: [{ id: "d", type: "schedule", enabled: true, schedule: { type: "daily", timezone: "UTC", runAtHour: 3, runAtMinute: 0 } }]
        }))
        const before = yield* store.outlook(1_000)
        assert.isNotNull(before.nextDueAt)
        assert.isAtMost(before.nextDueAt!, Date.parse(daily.nextRunAt!), "a not-yet-due slot is the next wake at the latest")
        assert.isTrue(Math.abs(before.now - Date.now()) < 60_000, "now is the store's clock")

        const due = yield* store.create(org, workflowInput({ triggers: [everySecond] }))
        const held = yield* claimWhenDue("sched-outlook", due.id, 60_000)
        const claimed = yield* store.outlook(1_000)
        assert.isNotNull(claimed.claimExpiresAt, "a held claim is a wake (its holder may die)")
        assert.isAtMost(claimed.claimExpiresAt!, claimed.now + 60_000)
        yield* store.releaseClaims(held.claim.schedulerId)

        const manual = yield* store.create(org, workflowInput())
        yield* store.startRun(org, manual.id, { triggerType: "manual" })
        assert.isTrue((yield* store.outlook(1_000)).openRuns, "a started run is followed until its outcome")
      }))

    it.effect("overlap policy skip: no new run while one is open; buffer_one keeps one waiting and starts it after", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        const org = yield* makeOrg
        const fireNext = (workflowId: string, scheduler: string) =>
          Effect.gen(function*() {
            const { now, claim } = yield* claimWhenDue(scheduler, workflowId)
            return yield* store.fireSlots(claim, planSlots({ ...claimPlanInput(claim), now }))
          })

        const skipping = yield* store.create(org, workflowInput({ triggers: [everySecond], overlapPolicy: "skip", catchUpMode: "latest" }))
        const first = yield* fireNext(skipping.id, "s1")
        assert.strictEqual(first.started.length, 1)
        const second = yield* fireNext(skipping.id, "s1")
        assert.deepInclude(second, { started: [], skippedByOverlap: 1 })

        const buffering = yield* store.create(org, workflowInput({ triggers: [everySecond], overlapPolicy: "buffer_one", catchUpMode: "latest" }))
        const started = (yield* fireNext(buffering.id, "s2")).started[0]!
        assert.strictEqual((yield* fireNext(buffering.id, "s2")).buffered, 1)
        assert.strictEqual((yield* fireNext(buffering.id, "s2")).skippedByOverlap, 1, "only one waits")
        yield* completeRun(started.sessionId!, "acked", "first done")
        yield* store.syncRunOutcomes(100)
        const runs = (yield* store.listRuns(org, buffering.id, { limit: 10 })).runs
        const waiting = runs.filter((r) => r.status === "queued")
        assert.strictEqual(waiting.length, 1)
        assert.isNotNull(waiting[0]!.sessionId, "the buffered run started once the running one finished")
        assert.strictEqual((yield* store.get(org, buffering.id, 1)).workflow.latestRunId, waiting[0]!.id)
      }))
  })

const claimPlanInput = (claim: WorkflowClaim) => ({
  triggers: claim.triggers,
  cursor: claim.cursor,
  catchUpWindowMs: claim.catchUpWindowMs,
  catchUpMode: claim.catchUpMode
})
