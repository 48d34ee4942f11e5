import type { RuntimeSession } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { type WarmRuntime, WarmRuntimes } from "../src/WarmRuntimes.ts"
import { testScope } from "../../../test/support/TestScope.ts"

const runtime: RuntimeSession = {
  prompt: () => { throw new Error("unused") },
  exportState: Effect.succeed({ files: new Map() }),
  importState: () => Effect.void
}

/** A warm entry whose scope records when it is closed. */
const entry = (name: string, closed: Array<string>) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    yield* Scope.addFinalizer(scope, Effect.sync(() => { closed.push(name) }))
    return { runtime, version: 1, scope } satisfies WarmRuntime
  })

it.effect("bounded: keeping one more than capacity closes the oldest; take hands the runtime over; stop closes the rest", () =>
  Effect.gen(function*() {
    const closed: Array<string> = []
    const stop = yield* testScope
    const warm = yield* WarmRuntimes.make(2).pipe(Scope.provide(stop))
    yield* warm.keep("ses_a", yield* entry("a", closed))
    yield* warm.keep("ses_b", yield* entry("b", closed))
    yield* warm.keep("ses_c", yield* entry("c", closed))
    assert.deepStrictEqual([closed, warm.size()], [["a"], 2])

    const taken = yield* warm.take("ses_b")
    assert.strictEqual(taken?.version, 1)
    assert.isUndefined(yield* warm.take("ses_b"), "taken once")
    yield* Scope.close(stop, Exit.void)
    assert.deepStrictEqual(closed, ["a", "c"], "a taken runtime belongs to its taker, not to the cache")
  }))
