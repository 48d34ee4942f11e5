import type { Lease, RunnableCommand } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { CommandQueue, EventLog } from "@cowork/services"
import { Effect, Option, type Tracer } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import { runStale } from "./AnswerDelivery.ts"
import { aborted } from "./EventDrafts.ts"
import { fenced } from "./Fencing.ts"
import { type HeldSession, HeldSessions } from "./HeldSessions.ts"
import type { LeasedRuntime } from "./LeasedRuntime.ts"
import * as PromptTurn from "./PromptTurn.ts"

/** The span's call site is always the same line: no stack capture (an `Error`) per command. */
const NO_STACK_TRACE = { captureStackTrace: false } as const

/** The enqueueing request's span, from the `traceparent` stored with the command, as a link for the run's span. */
const enqueuedBy = (command: RunnableCommand): ReadonlyArray<Tracer.SpanLink> => {
  if (command.traceParent === undefined) return []
  const span = HttpTraceContext.w3c(Headers.fromInput({ traceparent: command.traceParent }))
  return Option.isSome(span) ? [{ span: span.value, attributes: { "link.type": "enqueued-by" } }] : []
}

/**
 * The abort command: `session.aborted` with the ack in one statement (releasing the lease when nothing else is
 * pending), then a fresh abort signal for what follows. True when the lease was released.
 */
const runAbort = Effect.fnUntraced(function*(lease: Lease, command: RunnableCommand, session: HeldSession) {
  const log = yield* EventLog
  const metrics = yield* Metrics
  const held = yield* HeldSessions
  const closed = yield* fenced(log.close(lease, [aborted(command)], { commandId: command.id, outcome: "acked" }), command.id)
  yield* held.rearmAbort(session)
  yield* metrics.inc("open_cowork_cloud_worker_commands_processed_total", { status: "acked" })
  yield* Effect.logInfo("session aborted")
  return closed.released
}, Effect.withSpan("Worker.runAbort"))

/**
 * Runs one command of a held session's mailbox (started by `CommandQueue.start`: a prompt's opening events are
 * written), by kind, in a `worker.command` span linked to its enqueueing. True when its closing write released the
 * lease (nothing else was pending).
 */
export const run = (lease: Lease, command: RunnableCommand, session: HeldSession, runtime: LeasedRuntime) =>
  Effect.gen(function*() {
    const queue = yield* CommandQueue
    switch (command.kind) {
      case "abort":
        return yield* runAbort(lease, command, session)
      case "prompt":
        return yield* PromptTurn.run(lease, command, {
          runtime: runtime.open,
          abortRequested: session.abortRequested,
          checkpoint: runtime.checkpoint,
          answers: { nextSignal: session.nextAnswerSignal, next: queue.nextAnswer(lease) },
          interruptRequested: session.interruptRequested(command.id),
          opened: true
        })
      default:
        // An answer the running turn did not take: its turn is over.
        yield* runStale(lease, command)
        return false
    }
  }).pipe(
    Effect.withSpan("worker.command", {
      kind: "consumer",
      links: enqueuedBy(command),
      attributes: { "cowork.command.kind": command.kind, "cowork.command.attempt": command.attempt, "cowork.epoch": lease.epoch }
    }, NO_STACK_TRACE),
    Effect.annotateLogs({ command_id: command.id })
  )
