import type { EventDraft, Lease, RunnableCommand, RuntimeFailure } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { EventLog, type RuntimeSession } from "@cowork/services"
import { Effect, Fiber, Option } from "effect"
import { makeTurnAsks, type TurnAnswers } from "./AnswerDelivery.ts"
import type { CheckpointCursor } from "./CheckpointCursor.ts"
import { completionOf, fromRuntimeEvent, turnClosing, turnOpening, type TurnOutcome } from "./EventDrafts.ts"
import { fenced } from "./Fencing.ts"
import { appendInBursts } from "./TurnBatcher.ts"

/** How long the turn's last burst waits for the checkpoint save to ride in the closing statement with the ack. */
export const LAST_BURST_HOLD = "100 millis"

/** What a prompt turn runs against: the session's runtime, its abort signal, and its checkpoint cursor. */
export interface TurnContext {
  readonly runtime: Effect.Effect<RuntimeSession, RuntimeFailure>
  /** Completes when the session is aborted: the turn is interrupted and ends `cancelled`. */
  readonly abortRequested: Effect.Effect<void>
  readonly checkpoint: CheckpointCursor
  /** The answers to the turn's asks (permission requests, questions); a turn without them cannot be answered. */
  readonly answers?: TurnAnswers | undefined
  /** Completes (with the interrupting prompt's id) when a later prompt interrupts this one. */
  readonly interruptRequested?: Effect.Effect<string> | undefined
  /** The opening events are already written (`CommandQueue.start`); otherwise the turn appends them first. */
  readonly opened?: boolean | undefined
}

/**
 * Runs one prompt command: `running` (unless already written), the runtime's events appended in bursts as they
 * come, then the closing statement that acknowledges the command (with `session.idle` and the outcome) and releases
 * the lease when nothing else is pending. Every append is fenced by the lease; a runtime failure fails the command,
 * an abort cancels it. Returns whether the lease was released.
 */
export const run = Effect.fnUntraced(function*(lease: Lease, command: RunnableCommand, turn: TurnContext) {
  const log = yield* EventLog
  const metrics = yield* Metrics
  const { checkpoint } = turn
  const append = (drafts: ReadonlyArray<EventDraft>) => fenced(log.append(lease, drafts), command.id)
  if (turn.opened !== true) yield* append(turnOpening(command))

  let last: Array<EventDraft> = []
  // The text of each message still streaming (kept as the message if the turn is interrupted).
  const partial = new Map<string, string>()
  const outcome: TurnOutcome = yield* Effect.gen(function*() {
    const runtime = yield* turn.runtime
    // While the turn runs, the answers to its asks are delivered beside it (the turn waits on them).
    const asks = turn.answers === undefined ? undefined : makeTurnAsks(lease, turn.answers, turn.runtime)
    if (asks !== undefined) yield* Effect.forkScoped(asks.deliver)
    last = yield* appendInBursts(
      runtime.prompt({
        commandId: command.id,
        text: command.payload.text ?? "",
        agent: command.payload.agent,
        attempt: command.attempt
      }),
      (event) => {
        asks?.observe(event)
        if (event._tag === "AssistantDelta") partial.set(event.messageId, (partial.get(event.messageId) ?? "") + event.delta)
        if (event._tag === "AssistantMessage") partial.delete(event.messageId)
        return fromRuntimeEvent(event, command)
      },
      append
    )
  }).pipe(
    Effect.scoped,
    Effect.as<TurnOutcome>({ _tag: "acked" }),
    Effect.catchTag("RuntimeFailure", (error) => Effect.succeed<TurnOutcome>({ _tag: "failed", message: error.message })),
    Effect.raceFirst(turn.abortRequested.pipe(Effect.as<TurnOutcome>({ _tag: "cancelled" }))),
    Effect.raceFirst(
      turn.interruptRequested === undefined
        ? Effect.never
        : turn.interruptRequested.pipe(Effect.map((by): TurnOutcome => ({ _tag: "interrupted", by })))
    )
  )

  // The state is saved before the ack; the ack statement itself moves checkpoint_version (no save, no ack). The
  // turn's last burst waits for the save and rides in the closing statement (one fenced write and one commit, not
  // two), unless the save takes longer than LAST_BURST_HOLD (a slow or failing store): then the burst is appended on
  // its own while the save goes on, and the closing statement carries only the ack.
  let closingLast = last
  let checkpointVersion: number | undefined
  if (!checkpoint.enabled || last.length === 0) checkpointVersion = yield* checkpoint.save
  else {
    const saving = yield* Effect.forkChild(checkpoint.save)
    const saved = yield* Effect.timeoutOption(Fiber.join(saving), LAST_BURST_HOLD)
    if (Option.isSome(saved)) checkpointVersion = saved.value
    else {
      yield* append(last)
      closingLast = []
      checkpointVersion = yield* Fiber.join(saving)
    }
  }
  const closing = turnClosing(command, outcome, closingLast, partial)
  const closed = yield* fenced(
    log.close(lease, closing, {
      commandId: command.id,
      outcome: completionOf(outcome),
      error: outcome._tag === "failed" ? outcome.message : undefined,
      checkpointVersion
    }),
    command.id
  )
  yield* checkpoint.acknowledged(checkpointVersion)
  yield* metrics.inc("open_cowork_cloud_worker_commands_processed_total", { status: completionOf(outcome) })
  yield* Effect.logInfo("command completed").pipe(Effect.annotateLogs({ outcome: outcome._tag, attempt: command.attempt }))
  return closed.released
}, Effect.withSpan("Worker.runPrompt"))
