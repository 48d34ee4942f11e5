import { Clock, Effect, Exit, Fiber, Option, Scope } from "effect"
import type { TestClock } from "effect/testing"

/**
 * A scope for something a test starts and may stop itself (a worker, a server, a subscription), closed with the
 * test's own scope however the test ends: a failing assertion included (a worker left running kept its fibers and
 * pool connections, and later tests hung). The test may close it itself to check the shutdown; closing it again is
 * a no-op.
 */
export const testScope = Effect.acquireRelease(Scope.make(), (scope, exit) => closeAdvancingTestClock(Scope.close(scope, exit)))

const isTestClock = (clock: Clock.Clock): clock is TestClock.TestClock => "adjust" in clock && "withLive" in clock

/**
 * Under the `TestClock`, a close that waits for clock time (a worker's drain grace, with a turn a failed test never
 * released) would wait forever: the clock moves on, a second at a time, until the close is done.
 */
const closeAdvancingTestClock = (close: Effect.Effect<void>) =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    if (!isTestClock(clock)) return close
    return Effect.gen(function*() {
      const closing = yield* Effect.forkChild(close)
      while (true) {
        const done = yield* clock.withLive(Effect.timeoutOption(Fiber.await(closing), 10))
        if (Option.isSome(done)) return yield* Exit.asVoid(done.value)
        yield* clock.adjust("1 second")
      }
    })
  })
