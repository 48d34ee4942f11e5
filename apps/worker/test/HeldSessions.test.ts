import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref } from "effect"
import { HeldSessions } from "../src/HeldSessions.ts"
import { WorkerStatus } from "../src/WorkerStatus.ts"
import { lease } from "./support/StubStores.ts"

const Env = HeldSessions.layer.pipe(Layer.provideMerge(WorkerStatus.layer))

it.effect("held sessions are mirrored in activeSessions; forgetting an older epoch keeps the newer hold", () =>
  Effect.gen(function*() {
    const held = yield* HeldSessions
    const status = yield* WorkerStatus
    yield* held.hold(lease("ses_a", 1))
    yield* held.hold(lease("ses_b", 1))
    assert.deepStrictEqual([held.size(), yield* Ref.get(status.activeSessions)], [2, 2])
    yield* held.hold(lease("ses_a", 2))
    yield* held.forget(lease("ses_a", 1))
    assert.isTrue(held.isHeld("ses_a"), "the epoch-1 fiber ending does not drop the epoch-2 hold")
    yield* held.forget(lease("ses_a", 2))
    assert.deepStrictEqual([held.sessionIds(), yield* Ref.get(status.activeSessions)], [["ses_b"], 1])
  }).pipe(Effect.provide(Env)))

it.effect("an abort request completes the held session's signal; after the abort ran, a fresh signal is armed", () =>
  Effect.gen(function*() {
    const held = yield* HeldSessions
    const session = yield* held.hold(lease("ses_a", 3))
    assert.isUndefined(yield* held.requestAbort("ses_other"), "not held here")
    const waiting = yield* Effect.forkChild(session.abortRequested)
    assert.strictEqual(yield* held.requestAbort("ses_a"), 3)
    yield* Fiber.join(waiting)
    yield* held.rearmAbort(session)
    const next = yield* Effect.forkChild(session.abortRequested)
    yield* Effect.yieldNow
    assert.isUndefined(next.pollUnsafe(), "the next turn is not cancelled by the old abort")
    yield* held.requestAbort("ses_a")
    yield* Fiber.join(next)
  }).pipe(Effect.provide(Env)))
