import { layerMemoryControlPlane } from "@cowork/services"
import { Metrics } from "@cowork/observability"
import { WorkerConfig, type WorkerSettings } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Queue, Scope } from "effect"
import { TestClock } from "effect/testing"
import { memoryPlane } from "../../../test/support/MemoryPlane.ts"
import { GatedRuntime, type TurnStarted } from "./support/GatedRuntime.ts"
import { testScope } from "../../../test/support/TestScope.ts"

const Env = Layer.merge(layerMemoryControlPlane, GatedRuntime.layer)

// Neither the backstop poll nor the reaper ticks during these tests: a claim can only come from a signal.
const quiet: Partial<WorkerSettings> = { pollIntervalMs: 600_000, reaperIntervalMs: 600_000, leaseTtlMs: 60_000 }

const startWorker = (settings: Partial<WorkerSettings>) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ ...quiet, ...settings })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    return scope
  })

/** The next turn a runtime starts, as long as the fibers can run without clock time passing. */
const nextTurnAtOnce = (runtime: GatedRuntime["Service"], what: string) =>
  Effect.gen(function*() {
    for (let spin = 0; spin < 5_000; spin++) {
      const turn = yield* Queue.poll(runtime.started)
      if (turn._tag === "Some") return turn.value as TurnStarted
      yield* Effect.yieldNow
    }
    return assert.fail(`no claim without a clock tick: ${what}`)
  })

it.effect("a lease expired by a drain past its grace is claimed by another worker at once, not on its next tick", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const runtime = yield* GatedRuntime
    const workerA = yield* startWorker({ workerId: "worker-a", shutdownGraceMs: 1_000 })
    const sessionId = yield* plane.createSession()
    const commandId = yield* plane.enqueue(sessionId, "prompt", "hangs")
    assert.strictEqual((yield* Queue.take(runtime.started)).attempt, 1)
    const workerB = yield* startWorker({ workerId: "worker-b" })

    const shutdown = yield* Effect.forkChild(Scope.close(workerA, Exit.void))
    yield* TestClock.adjust(1_000)
    yield* Fiber.join(shutdown)
    const rerun = yield* nextTurnAtOnce(runtime, "after worker-a's grace expired")
    assert.deepStrictEqual([rerun.commandId, rerun.attempt], [commandId, 2])
    assert.strictEqual((yield* plane.lease(sessionId)).workerId, "worker-b")
    yield* runtime.release(commandId, 2)
    yield* Scope.close(workerB, Exit.void)
    assert.strictEqual((yield* plane.commands(sessionId))[0]!.status, "acked")
  }).pipe(Effect.provide(Env)))

it.effect("a draining worker that finished its command hands the session's next command over at once", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const runtime = yield* GatedRuntime
    const workerA = yield* startWorker({ workerId: "worker-a", shutdownGraceMs: 30_000 })
    const sessionId = yield* plane.createSession()
    const first = yield* plane.enqueue(sessionId, "prompt", "first")
    yield* Queue.take(runtime.started)
    const second = yield* plane.enqueue(sessionId, "prompt", "second")
    const workerB = yield* startWorker({ workerId: "worker-b" })

    const shutdown = yield* Effect.forkChild(Scope.close(workerA, Exit.void))
    yield* runtime.release(first, 1)
    yield* Fiber.join(shutdown)
    const next = yield* nextTurnAtOnce(runtime, "after worker-a drained with a command pending")
    assert.deepStrictEqual([next.commandId, next.attempt], [second, 1])
    assert.strictEqual((yield* plane.lease(sessionId)).workerId, "worker-b")
    yield* runtime.release(second, 1)
    yield* Scope.close(workerB, Exit.void)
    assert.deepStrictEqual((yield* plane.commands(sessionId)).map((c) => c.status), ["acked", "acked"])
  }).pipe(Effect.provide(Env)))
