import {
  type AskAnswer,
  answerOf,
  askKey,
  askOf,
  type EventDraft,
  type Lease,
  type RunnableCommand,
  RuntimeFailure,
  type StaleOwner
} from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { EventLog, type RuntimeEvent, type RuntimeSession } from "@cowork/services"
import { Deferred, Effect, Option } from "effect"
import { fenced } from "./Fencing.ts"

/** Where a turn finds the answers to its asks: the mailbox's answers, and the signal that one was queued. */
export interface TurnAnswers {
  /** Arms a wait for the next answer signal (see `HeldSession.nextAnswerSignal`). */
  readonly nextSignal: Effect.Effect<Effect.Effect<void>>
  /** Takes the oldest pending answer of the session (`CommandQueue.nextAnswer`), fenced by the lease. */
  readonly next: Effect.Effect<Option.Option<RunnableCommand>, StaleOwner>
}

/** Without a signal (a lost notification), a turn with an open ask still looks at its mailbox this often. */
export const ANSWER_BACKSTOP_POLL_MS = 2_000

/** Longest a runtime may take to accept an answer before the answer command fails. */
const DELIVERY_TIMEOUT_MS = 30_000

/** The event that records a delivered answer (it closes the ask in the projection). */
const resolution = (answer: AskAnswer, command: RunnableCommand): EventDraft => {
  const owner = { commandId: command.id, attempt: command.attempt }
  switch (answer.kind) {
    case "permission_respond":
      return { type: "permission.replied", payload: { permissionId: answer.permissionId, response: answer.response, commandId: command.id }, ...owner }
    case "question_reply":
      return { type: "question.replied", payload: { requestId: answer.requestId, answers: answer.answers, commandId: command.id }, ...owner }
    case "question_reject":
      return { type: "question.rejected", payload: { requestId: answer.requestId, commandId: command.id }, ...owner }
  }
}

const notDelivered = (command: RunnableCommand, message: string): EventDraft => ({
  type: "runtime.error",
  payload: { message, commandId: command.id },
  commandId: command.id,
  attempt: command.attempt
})

const unsupported = (what: string) => Effect.fail(new RuntimeFailure({ message: `this runtime does not take ${what}` }))

/** Hands one answer to the runtime. */
const toRuntime = (runtime: RuntimeSession, answer: AskAnswer): Effect.Effect<void, RuntimeFailure> => {
  switch (answer.kind) {
    case "permission_respond":
      return runtime.respondPermission?.(answer.permissionId, answer.response) ?? unsupported("permission answers")
    case "question_reply":
      return runtime.replyQuestion?.(answer.requestId, answer.answers) ?? unsupported("question answers")
    case "question_reject":
      return runtime.rejectQuestion?.(answer.requestId) ?? unsupported("question answers")
  }
}

/** Acknowledges an answer command with its events: `acked` when delivered, `failed` otherwise. */
const complete = (lease: Lease, command: RunnableCommand, drafts: ReadonlyArray<EventDraft>, outcome: "acked" | "failed", error?: string) =>
  Effect.gen(function*() {
    const log = yield* EventLog
    const metrics = yield* Metrics
    yield* fenced(log.append(lease, drafts, { commandId: command.id, outcome, error }), command.id)
    yield* metrics.inc("open_cowork_cloud_worker_commands_processed_total", { status: outcome })
    yield* Effect.logInfo(outcome === "acked" ? "answer delivered" : "answer not delivered").pipe(
      Effect.annotateLogs({ command_id: command.id, kind: command.kind })
    )
  })

/**
 * An answer the mailbox reached with no turn running (its turn ended before the answer was delivered): failed, with a
 * `runtime.error` saying so. Nothing waits on it any more.
 */
export const runStale = (lease: Lease, command: RunnableCommand) => {
  const answer = answerOf(command)
  const { ask, askId } = answer === undefined ? { ask: "ask", askId: "?" } : askOf(answer)
  const message = `${ask} ${askId} is no longer pending: its turn ended before the answer arrived`
  return complete(lease, command, [notDelivered(command, message)], "failed", message)
}

/**
 * The asks of one running turn and the loop that delivers their answers. `observe` sees every runtime event the turn
 * emits (it records the asks); `deliver` runs for the life of the turn (fork it in the turn's scope): whenever an ask
 * is open and an answer is signalled (or the backstop poll passes), it takes the mailbox's pending answers one by one,
 * hands each to the runtime and acknowledges it with `permission.replied` / `question.replied` / `question.rejected`.
 * An answer to an ask this turn never made (or already answered) fails with a `runtime.error`. Each take, delivery and
 * acknowledgement is uninterruptible, so an ending turn never leaves an answer command `running`.
 */
export const makeTurnAsks = (lease: Lease, answers: TurnAnswers, runtime: Effect.Effect<RuntimeSession, RuntimeFailure>) => {
  const open = new Set<string>()
  let asked = Deferred.makeUnsafe<void>()

  const observe = (event: RuntimeEvent) => {
    const key = event._tag === "PermissionRequested"
      ? askKey("permission", event.permissionId)
      : event._tag === "QuestionAsked"
      ? askKey("question", event.requestId)
      : undefined
    if (key === undefined) return
    open.add(key)
    const fired = asked
    asked = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(fired, Effect.void)
  }

  const deliverOne = (command: RunnableCommand) =>
    Effect.gen(function*() {
      const answer = answerOf(command)
      if (answer === undefined) return yield* runStale(lease, command)
      const { ask, askId } = askOf(answer)
      const key = askKey(ask, askId)
      if (!open.has(key)) {
        const message = `${ask} ${askId} is not pending in the running turn`
        return yield* complete(lease, command, [notDelivered(command, message)], "failed", message)
      }
      const delivered = yield* Effect.flatMap(runtime, (session) => toRuntime(session, answer)).pipe(
        Effect.timeoutOption(DELIVERY_TIMEOUT_MS),
        Effect.map((result) => Option.isSome(result) ? undefined : `the runtime did not take the answer within ${DELIVERY_TIMEOUT_MS} ms`),
        Effect.catchTag("RuntimeFailure", (error) => Effect.succeed(error.message))
      )
      if (delivered === undefined) {
        open.delete(key)
        return yield* complete(lease, command, [resolution(answer, command)], "acked")
      }
      const message = `answer to ${ask} ${askId} not delivered: ${delivered}`
      return yield* complete(lease, command, [notDelivered(command, message)], "failed", message)
    })

  const drain = Effect.gen(function*() {
    while (true) {
      const taken = yield* Effect.uninterruptible(Effect.gen(function*() {
        const next = yield* fenced(answers.next)
        if (Option.isNone(next)) return false
        yield* deliverOne(next.value)
        return true
      }))
      if (!taken) return
    }
  })

  const deliver = Effect.gen(function*() {
    while (true) {
      const signal = yield* answers.nextSignal
      const newAsk = Deferred.await(asked)
      if (open.size > 0) {
        yield* drain
        yield* Effect.raceFirst(Effect.raceFirst(signal, newAsk), Effect.sleep(ANSWER_BACKSTOP_POLL_MS))
      } else {
        yield* newAsk
      }
    }
  })

  return { observe, deliver }
}
