import { CommandQueue, EventLog, LeaseStore, QueueControls, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, newOrg, newSession, prompt } from "./ControlPlaneFixtures.ts"

/** Starts the session's oldest pending prompt and closes it with `outcome`, as a worker does. */
const workOff = (session: { readonly sessionId: string; readonly orgId: string }, outcome: "acked" | "failed") =>
  Effect.gen(function*() {
    const lease = yield* claimOne("w-controls", session.sessionId)
    const command = Option.getOrThrow(yield* (yield* CommandQueue).start(lease))
    const owner = { commandId: command.id, attempt: command.attempt }
    yield* (yield* EventLog).close(lease, [{ type: "session.idle", payload: { commandId: command.id, outcome }, ...owner }], {
      commandId: command.id,
      outcome
    })
    return command.id
  })

const failureTag = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? (exit.cause.reasons[0] as { readonly error?: { readonly _tag?: string } } | undefined)?.error?._tag : "success"

/** The operator's queue controls: which prompt a retry re-queues, and dead-lettering a pending command. */
export const queueControlsContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`QueueControls contract: ${harness.name}`, () => {
    it.effect("the latest failed prompt: none until the latest prompt failed; scoped to the org; a platform call sees every org", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const controls = yield* QueueControls
        const session = yield* newSession()
        assert.isTrue(Option.isNone(yield* controls.latestFailedPrompt(session.orgId, session.sessionId)), "no prompt yet")
        yield* (yield* SessionStore).prompt(session.orgId, session.sessionId, { text: "try this", agent: "plan" })
        assert.isTrue(Option.isNone(yield* controls.latestFailedPrompt(session.orgId, session.sessionId)), "pending is not failed")
        const failed = yield* workOff(session, "failed")
        assert.deepStrictEqual(Option.getOrThrow(yield* controls.latestFailedPrompt(session.orgId, session.sessionId)), {
          orgId: session.orgId,
          sessionId: session.sessionId,
          commandId: failed,
          status: "failed",
          text: "try this",
          agent: "plan"
        })
        assert.strictEqual(Option.getOrThrow(yield* controls.latestFailedPrompt(undefined, session.sessionId)).commandId, failed)
        const stranger = yield* newOrg
        assert.strictEqual(failureTag(yield* Effect.exit(controls.latestFailedPrompt(stranger, session.sessionId))), "NotFound")
        assert.strictEqual(failureTag(yield* Effect.exit(controls.latestFailedPrompt(undefined, "ses_missing"))), "NotFound")

        yield* prompt(session, "again")
        yield* workOff(session, "acked")
        assert.isTrue(Option.isNone(yield* controls.latestFailedPrompt(session.orgId, session.sessionId)), "a later prompt succeeded")
      })))

    it.effect("dead-letter: only a pending command, of the caller's org; the worker never starts it; the retry source", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const controls = yield* QueueControls
        const session = yield* newSession()
        const stuck = yield* prompt(session, "stuck")
        const next = yield* prompt(session, "next")

        const stranger = yield* newOrg
        assert.strictEqual(failureTag(yield* Effect.exit(controls.deadLetter(stranger, stuck, "ops"))), "NotFound", "another org's command")
        assert.strictEqual(failureTag(yield* Effect.exit(controls.deadLetter(undefined, "cmd_missing", "ops"))), "NotFound")
        assert.deepStrictEqual(yield* controls.deadLetter(session.orgId, stuck, "poisoned the queue"), {
          orgId: session.orgId,
          sessionId: session.sessionId,
          commandId: stuck,
          kind: "prompt"
        })
        const again = yield* Effect.exit(controls.deadLetter(undefined, stuck, "ops"))
        assert.strictEqual(failureTag(again), "Conflict", "already dead")
        assert.include(JSON.stringify(again), "dead")
        const log = yield* EventLog
        const deadLettered = (yield* log.read(session.sessionId, 0, 100)).filter((event) => event.type.startsWith("command."))
        assert.deepStrictEqual(deadLettered.map((event) => [event.type, event.payload]), [
          ["command.dead_lettered", { commandId: stuck, kind: "prompt", reason: "poisoned the queue", cause: "operator" }]
        ], "one event, written by the dead-lettering that won (the refused ones wrote none)")
        assert.strictEqual((yield* (yield* SessionStore).view(session.orgId, session.sessionId)).status, "queued", "`next` is still pending")

        // The owner starts the next pending command, never the dead-lettered one; a running command is refused.
        const lease = yield* claimOne("w-after", session.sessionId)
        const started = Option.getOrThrow(yield* (yield* CommandQueue).start(lease))
        assert.strictEqual(started.id, next)
        const running = yield* Effect.exit(controls.deadLetter(session.orgId, next, "ops"))
        assert.strictEqual(failureTag(running), "Conflict")
        assert.include(JSON.stringify(running), "running")
        yield* (yield* LeaseStore).expire(lease)

        const other = yield* newSession()
        const lone = yield* prompt(other, "lone")
        yield* controls.deadLetter(undefined, lone, "platform operator")
        // Nothing left pending or running: the queued session is idle again, in the same batch.
        const settled = yield* log.read(other.sessionId, 0, 100)
        assert.deepStrictEqual(settled.slice(-2).map((event) => [event.type, event.payload]), [
          ["command.dead_lettered", { commandId: lone, kind: "prompt", reason: "platform operator", cause: "operator" }],
          ["session.status", { status: "idle", commandId: lone }]
        ])
        assert.strictEqual((yield* (yield* SessionStore).view(other.orgId, other.sessionId)).status, "idle")
        assert.deepInclude(Option.getOrThrow(yield* controls.latestFailedPrompt(other.orgId, other.sessionId)), {
          commandId: lone,
          status: "dead",
          text: "lone"
        })
      })))
  })
