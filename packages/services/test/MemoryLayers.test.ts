import { CommandQueue, EventLog, layerMemoryControlPlane, LeaseStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TestClock } from "effect/testing"
import { memoryPlane } from "../../../test/support/MemoryPlane.ts"

it.effect("memory leases expire on the Effect clock, and a taken-over owner is refused like on Postgres", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const log = yield* EventLog
    const sessionId = yield* plane.createSession()
    const commandId = yield* plane.enqueue(sessionId, "prompt", "hi")

    const [first] = yield* leases.claim("w1", 4, 1_000, 3)
    assert.deepStrictEqual(yield* leases.claim("w2", 4, 1_000, 3), [], "a live lease is not claimable")
    assert.strictEqual(Option.getOrThrow(yield* queue.next(first!)).id, commandId)
    yield* log.append(first!, [{ type: "assistant.message", payload: { messageId: "m1", text: "one", final: true }, commandId, attempt: 1 }])

    yield* TestClock.adjust(999)
    yield* leases.renew(first!, 1_000)
    yield* TestClock.adjust(1_000)
    const [second] = yield* leases.claim("w2", 4, 1_000, 3)
    assert.strictEqual(second!.epoch, first!.epoch + 1)

    const refused = yield* Effect.all([
      Effect.flip(log.append(first!, [{ type: "session.idle", payload: {} }], { commandId, outcome: "acked" })),
      Effect.flip(leases.renew(first!, 1_000)),
      Effect.flip(leases.releaseIfIdle(first!)),
      Effect.flip(leases.expire(first!)),
      Effect.flip(queue.next(first!))
    ])
    assert.deepStrictEqual(refused.map((error) => error._tag), Array(5).fill("StaleOwner"))

    const rerun = Option.getOrThrow(yield* queue.next(second!))
    assert.deepStrictEqual([rerun.attempt, rerun.abandonedAttempts], [2, 1])
    yield* log.append(second!, [
      { type: "command.retried", payload: { commandId, abandonedAttempt: 1, attempt: 2 } },
      { type: "assistant.message", payload: { messageId: "m2", text: "two", final: true }, commandId, attempt: 2 },
      { type: "session.idle", payload: { commandId } }
    ], { commandId, outcome: "acked" })
    assert.deepStrictEqual((yield* plane.messages(sessionId)).map((m) => m.messageId), [commandId, "m2"])
    const events = yield* plane.events(sessionId)
    assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1))
    assert.isTrue(yield* leases.releaseIfIdle(second!))

    yield* TestClock.adjust(10_000)
    const reaped = yield* leases.reapExpired({ batchSize: 10, drainCap: 10, maxAttempts: 3 })
    assert.strictEqual(reaped.reaped, 0, "a released lease is nobody's to reap")
  }).pipe(Effect.provide(layerMemoryControlPlane)))

it.effect("the memory reaper stops at the drain cap and kills commands past max attempts", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    for (let i = 0; i < 25; i++) {
      const sessionId = yield* plane.createSession()
      yield* plane.enqueue(sessionId, "prompt", "x")
    }
    for (const lease of yield* leases.claim("w1", 25, 1_000, 2)) yield* queue.next(lease)
    yield* TestClock.adjust(1_000)
    const ticks = [
      yield* leases.reapExpired({ batchSize: 5, drainCap: 10, maxAttempts: 2 }),
      yield* leases.reapExpired({ batchSize: 5, drainCap: 10, maxAttempts: 2 }),
      yield* leases.reapExpired({ batchSize: 5, drainCap: 10, maxAttempts: 2 })
    ]
    assert.deepStrictEqual(ticks.map((t) => [t.reaped, t.capHit, t.requeued]), [[10, true, 10], [10, true, 10], [5, false, 5]])
    for (const lease of yield* leases.claim("w2", 25, 1_000, 2)) yield* queue.next(lease)
    yield* TestClock.adjust(1_000)
    const final = yield* leases.reapExpired({ batchSize: 50, drainCap: 50, maxAttempts: 2 })
    assert.deepStrictEqual([final.reaped, final.dead, final.requeued], [25, 25, 0])
  }).pipe(Effect.provide(layerMemoryControlPlane)))

it.effect("a command the memory reaper kills settles its session with session.idle (outcome dead), as on Postgres", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const log = yield* EventLog
    const sessionId = yield* plane.createSession()
    const commandId = yield* plane.enqueue(sessionId, "prompt", "x")
    const [lease] = yield* leases.claim("w1", 1, 1_000, 1)
    yield* queue.next(lease!)
    yield* log.append(lease!, [{ type: "session.status", payload: { status: "running", commandId } }])
    assert.strictEqual(yield* plane.status(sessionId), "running")
    yield* TestClock.adjust(1_000)
    const reaped = yield* leases.reapExpired({ batchSize: 10, drainCap: 10, maxAttempts: 1 })
    assert.strictEqual(reaped.dead, 1)
    const last = (yield* plane.events(sessionId)).at(-1)!
    assert.strictEqual(last.type, "session.idle")
    assert.deepInclude(last.payload as object, { outcome: "dead", commandId, attempts: 1 })
    assert.strictEqual(yield* plane.status(sessionId), "idle")
  }).pipe(Effect.provide(layerMemoryControlPlane)))
