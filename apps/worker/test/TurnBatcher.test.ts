import { assert, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Queue, Stream } from "effect"
import { appendInBursts } from "../src/TurnBatcher.ts"
import { settle } from "./support/StubStores.ts"


it.effect("what arrives while an append is in flight rides in one burst; the ending burst is returned, not appended", () =>
  Effect.gen(function*() {
    const source = yield* Queue.unbounded<number, Cause.Done>()
    const appended = yield* Queue.unbounded<ReadonlyArray<string>>()
    const gate = yield* Deferred.make<void>()
    const turn = yield* appendInBursts(Stream.fromQueue(source), (n) => `e${n}`, (burst) =>
      Queue.offer(appended, burst).pipe(Effect.andThen(Deferred.await(gate)))).pipe(Effect.scoped, Effect.forkChild)

    yield* Queue.offer(source, 1)
    assert.deepStrictEqual(yield* Queue.take(appended), ["e1"], "a slow producer streams item by item")
    yield* Queue.offerAll(source, [2, 3, 4])
    yield* Queue.end(source)
    yield* settle
    yield* Deferred.succeed(gate, undefined)

    assert.deepStrictEqual(yield* Fiber.join(turn), ["e2", "e3", "e4"], "the final burst is handed back for the closing write")
    assert.strictEqual(yield* Queue.size(appended), 0, "nothing else was appended")
  }))

it.effect("a failing stream: what arrived before the failure is appended, then the failure propagates", () =>
  Effect.gen(function*() {
    const appended: Array<number> = []
    const exit = yield* appendInBursts(
      Stream.concat(Stream.make(1, 2), Stream.fail("boom")),
      (n) => n,
      (burst) => Effect.sync(() => { appended.push(...burst) })
    ).pipe(Effect.scoped, Effect.exit)
    assert.deepStrictEqual(appended, [1, 2])
    assert.deepStrictEqual(exit, Exit.fail("boom"))
  }))

it.effect("an empty turn appends nothing and returns an empty burst", () =>
  Effect.gen(function*() {
    let appends = 0
    const last = yield* appendInBursts(Stream.empty, (n: number) => n, () => Effect.sync(() => { appends++ })).pipe(Effect.scoped)
    assert.deepStrictEqual([last, appends], [[], 0])
  }))

it.effect("an append refused (stale owner) ends the turn with that error", () =>
  Effect.gen(function*() {
    const exit = yield* appendInBursts(Stream.make(1).pipe(Stream.concat(Stream.never)), (n) => n, () => Effect.fail("stale")).pipe(
      Effect.scoped,
      Effect.exit
    )
    assert.deepStrictEqual(exit, Exit.fail("stale"))
  }))
