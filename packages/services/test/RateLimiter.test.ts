import { RateLimiter } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"

const perMinute = (limit: number) => ({ limit, perMs: 60_000 })

layer(RateLimiter.layerMemory)("RateLimiter (per process, by design: no database write per request)", (it) => {
  it.effect("a bucket allows its burst, then refuses with the wait until the next token, and refills with time", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      for (let i = 0; i < 6; i++) assert.isUndefined(yield* limiter.take("p:a", perMinute(6)), `request ${i + 1}`)
      assert.strictEqual(yield* limiter.take("p:a", perMinute(6)), 10_000, "one token per 10 s")
      assert.isUndefined(yield* limiter.take("p:b", perMinute(6)), "another key has its own bucket")
      yield* TestClock.adjust("9999 millis")
      assert.strictEqual(yield* limiter.take("p:a", perMinute(6)), 1)
      yield* TestClock.adjust("1 millis")
      assert.isUndefined(yield* limiter.take("p:a", perMinute(6)))
      yield* TestClock.adjust("10 minutes")
      for (let i = 0; i < 6; i++) assert.isUndefined(yield* limiter.take("p:a", perMinute(6)), "refilled to the burst, no more")
      assert.isDefined(yield* limiter.take("p:a", perMinute(6)))
    }))

  it.effect("auth back-off: the 10th failure within a minute blocks the source for 60 s; failures spread out do not", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const rule = { maxFailures: 10, windowMs: 60_000, blockMs: 60_000 }
      for (let i = 0; i < 9; i++) yield* limiter.recordFailure("auth:1.2.3.4", rule)
      assert.isUndefined(yield* limiter.blockedFor("auth:1.2.3.4"))
      yield* limiter.recordFailure("auth:1.2.3.4", rule)
      assert.strictEqual(yield* limiter.blockedFor("auth:1.2.3.4"), 60_000)
      assert.isUndefined(yield* limiter.blockedFor("auth:5.6.7.8"), "another source is not blocked")
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(yield* limiter.blockedFor("auth:1.2.3.4"), 1_000)
      yield* TestClock.adjust("1 second")
      assert.isUndefined(yield* limiter.blockedFor("auth:1.2.3.4"))

      for (let i = 0; i < 20; i++) {
        yield* limiter.recordFailure("auth:slow", rule)
        yield* TestClock.adjust("7 seconds")
      }
      assert.isUndefined(yield* limiter.blockedFor("auth:slow"), "9 per window never blocks")
    }))
})
