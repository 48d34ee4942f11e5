import { assert } from "@effect/vitest"
import { Effect } from "effect"

/**
 * Waiting for something a test cannot synchronise on directly, once for every test: poll with a deadline, never a
 * bare sleep.
 */

/** Polls `check` every 20 ms of real time until it holds; fails naming `what` after `deadlineMs`. Needs the live clock. */
export const within = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, deadlineMs = 15_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + deadlineMs
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* Effect.sleep(20)
    }
    assert.fail(`not within ${deadlineMs}ms: ${what}`)
  })

/** Lets other fibers run until `check` holds; no clock time passes (for `TestClock` tests of in-memory stacks). */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    for (let spin = 0; spin < 5_000; spin++) {
      if (yield* check) return
      yield* Effect.yieldNow
    }
    assert.fail(`never happened: ${what}`)
  })

/**
 * Runs one step of a test with a deadline of real time, failing naming `what` when it takes longer: a hung database
 * call or subscription then names its step instead of timing the whole test out. Needs the live clock.
 */
export const step = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>, deadlineMs = 10_000) =>
  Effect.timeoutOrElse(effect, {
    duration: deadlineMs,
    orElse: () => Effect.sync(() => assert.fail(`step did not finish within ${deadlineMs}ms: ${what}`))
  })
