import type { Lease } from "@cowork/domain"
import { Context, Deferred, Effect, Layer, Ref } from "effect"
import { WorkerStatus } from "./WorkerStatus.ts"

/** A session this worker holds: the lease epoch, and the abort request its current prompt turn races against. */
export interface HeldSession {
  readonly sessionId: string
  readonly epoch: number
  /** Completes when an abort is requested for the session; a fresh one is armed after each abort command runs. */
  readonly abortRequested: Effect.Effect<void>
  /**
   * Arms a wait for the next answer signal (an answer to an ask was queued): the returned effect completes on the
   * first signal after this call. Arm before looking at the mailbox, so a signal in between is not missed.
   */
  readonly nextAnswerSignal: Effect.Effect<Effect.Effect<void>>
  /** Completes with the interrupting prompt's id when the prompt `commandId` is interrupted (`multitaskStrategy`). */
  readonly interruptRequested: (commandId: string) => Effect.Effect<string>
}

/**
 * The sessions this worker holds, keyed by session id, with one abort signal each. Every change is mirrored in
 * `WorkerStatus.activeSessions`; heartbeats report the size and the ids.
 */
export class HeldSessions extends Context.Service<HeldSessions, {
  /** Records a claimed lease (replacing an older epoch of the same session). */
  readonly hold: (lease: Lease) => Effect.Effect<HeldSession>
  /** Forgets the lease, unless the session is already held again under a newer epoch. */
  readonly forget: (lease: Lease) => Effect.Effect<void>
  readonly isHeld: (sessionId: string) => boolean
  readonly size: () => number
  readonly sessionIds: () => ReadonlyArray<string>
  /** Signals the session's running turn to stop; the held epoch, or undefined when the session is not held here. */
  readonly requestAbort: (sessionId: string) => Effect.Effect<number | undefined>
  /** Arms a fresh abort signal once the abort command ran, so the next prompt is not cancelled by the old one. */
  readonly rearmAbort: (session: HeldSession) => Effect.Effect<void>
  /** Tells the session's running turn an answer was queued; false when the session is not held here. */
  readonly signalAnswer: (sessionId: string) => Effect.Effect<boolean>
  /**
   * Interrupts the session's prompt `commandId` (now, or when its turn starts: the signal may beat the turn) in
   * favour of the prompt `by`; false when the session is not held here.
   */
  readonly requestInterrupt: (sessionId: string, commandId: string, by: string) => Effect.Effect<boolean>
}>()("cowork/worker/HeldSessions") {
  static readonly layer = Layer.effect(HeldSessions, Effect.gen(function*() {
    const status = yield* WorkerStatus
    const held = new Map<string, {
      readonly epoch: number
      abort: Deferred.Deferred<void>
      answer: Deferred.Deferred<void>
      /** Interrupts by interrupted command id: the interrupting prompt's id. */
      readonly interrupts: Map<string, Deferred.Deferred<string>>
    }>()
    const publish = Effect.suspend(() => Ref.set(status.activeSessions, held.size))
    return HeldSessions.of({
      hold: (lease) =>
        Effect.gen(function*() {
          const entry = {
            epoch: lease.epoch,
            abort: yield* Deferred.make<void>(),
            answer: yield* Deferred.make<void>(),
            interrupts: new Map<string, Deferred.Deferred<string>>()
          }
          const interruptOf = (commandId: string) => {
            let interrupt = entry.interrupts.get(commandId)
            if (interrupt === undefined) {
              interrupt = Deferred.makeUnsafe<string>()
              entry.interrupts.set(commandId, interrupt)
            }
            return interrupt
          }
          held.set(lease.sessionId, entry)
          yield* publish
          return {
            sessionId: lease.sessionId,
            epoch: lease.epoch,
            abortRequested: Effect.suspend(() => Deferred.await(entry.abort)),
            nextAnswerSignal: Effect.sync(() => {
              const armed = entry.answer
              return Deferred.await(armed)
            }),
            interruptRequested: (commandId) =>
              Effect.suspend(() => Deferred.await(interruptOf(commandId))).pipe(
                Effect.ensuring(Effect.sync(() => entry.interrupts.delete(commandId)))
              )
          }
        }),
      forget: (lease) =>
        Effect.suspend(() => {
          if (held.get(lease.sessionId)?.epoch === lease.epoch) held.delete(lease.sessionId)
          return publish
        }),
      isHeld: (sessionId) => held.has(sessionId),
      size: () => held.size,
      sessionIds: () => [...held.keys()],
      requestAbort: (sessionId) =>
        Effect.suspend(() => {
          const entry = held.get(sessionId)
          return entry === undefined ? Effect.undefined : Effect.as(Deferred.succeed(entry.abort, undefined), entry.epoch)
        }),
      signalAnswer: (sessionId) =>
        Effect.sync(() => {
          const entry = held.get(sessionId)
          if (entry === undefined) return false
          const fired = entry.answer
          entry.answer = Deferred.makeUnsafe<void>()
          Deferred.doneUnsafe(fired, Effect.void)
          return true
        }),
      requestInterrupt: (sessionId, commandId, by) =>
        Effect.sync(() => {
          const entry = held.get(sessionId)
          if (entry === undefined) return false
          let interrupt = entry.interrupts.get(commandId)
          if (interrupt === undefined) {
            // Requested before the turn armed it; a handful at most (one per interrupting prompt), gone with the lease.
            interrupt = Deferred.makeUnsafe<string>()
            entry.interrupts.set(commandId, interrupt)
          }
          Deferred.doneUnsafe(interrupt, Effect.succeed(by))
          return true
        }),
      rearmAbort: (session) =>
        Effect.gen(function*() {
          const entry = held.get(session.sessionId)
          if (entry?.epoch === session.epoch) entry.abort = yield* Deferred.make<void>()
        })
    })
  }))
}
