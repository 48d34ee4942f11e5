import { ChangeFeed } from "@cowork/services"
import { Effect, Stream } from "effect"
import { ClaimWake } from "./ClaimWake.ts"
import { HeldSessions } from "./HeldSessions.ts"

/**
 * Follows the command signals (from the caller's scope on): an abort for a session held here interrupts its
 * running turn, an answer is handed to its running turn; a signal for a session not held here, or a re-established
 * listener, wakes the claim loop.
 */
export const follow = Effect.gen(function*() {
  const changeFeed = yield* ChangeFeed
  const held = yield* HeldSessions
  const wake = yield* ClaimWake
  const signals = yield* changeFeed.commandSignals
  yield* Stream.runForEach(signals, (signal) =>
    Effect.gen(function*() {
      if (signal.kind === "abort") {
        const epoch = yield* held.requestAbort(signal.sessionId)
        if (epoch !== undefined) {
          yield* Effect.logInfo("abort requested").pipe(Effect.annotateLogs({ session_id: signal.sessionId, epoch }))
        }
      }
      if (signal.kind === "answer") yield* held.signalAnswer(signal.sessionId)
      if (signal.kind === "interrupt" && (yield* held.requestInterrupt(signal.sessionId, signal.commandId, signal.by))) {
        yield* Effect.logInfo("interrupt requested").pipe(
          Effect.annotateLogs({ session_id: signal.sessionId, command_id: signal.commandId, interrupted_by: signal.by })
        )
      }
      if (!held.isHeld(signal.sessionId)) yield* wake.request
    })).pipe(
      Effect.catchCause((cause) => Effect.logError("command signal stream failed", cause)),
      Effect.forkScoped
    )
  // A re-established listener: signals sent while it was down were lost, so claim now rather than at the backstop.
  yield* Stream.runForEach(yield* changeFeed.resyncs, () => wake.request).pipe(Effect.forkScoped)
})
