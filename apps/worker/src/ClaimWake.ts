import { Context, Effect, Layer, Queue } from "effect"

/**
 * Wakes the claim loop before its backstop poll: a released or lost lease frees capacity, a command signal or a
 * reaped lease makes work runnable. Requests coalesce (at most one is pending).
 */
export class ClaimWake extends Context.Service<ClaimWake, {
  readonly request: Effect.Effect<void>
  /** Waits for the next request. */
  readonly requested: Effect.Effect<void>
}>()("cowork/worker/ClaimWake") {
  static readonly layer = Layer.effect(ClaimWake, Effect.gen(function*() {
    const wake = yield* Queue.sliding<void>(1)
    return ClaimWake.of({ request: Queue.offer(wake, undefined).pipe(Effect.asVoid), requested: Queue.take(wake) })
  }))
}
