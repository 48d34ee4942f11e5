import { layerMemoryControlPlane } from "@cowork/services"
import { Metrics, STALE_OWNER_OPERATIONS } from "@cowork/observability"
import { WorkerConfig, type WorkerSettings } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Queue, Scope } from "effect"
import { TestClock } from "effect/testing"
import { memoryPlane } from "../../../test/support/MemoryPlane.ts"
import { GatedRuntime } from "./support/GatedRuntime.ts"
import { eventually } from "../../../test/support/Eventually.ts"
import { testScope } from "../../../test/support/TestScope.ts"

const Env = Layer.merge(layerMemoryControlPlane, GatedRuntime.layer)

/** Starts a worker in its own scope (closing the scope is its SIGTERM); returns the scope and its metrics. */
const startWorker = (settings: Partial<WorkerSettings>) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    const context = yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(Layer.provide(WorkerConfig.layerWith(settings)), Layer.provideMerge(Metrics.layerTest("worker"))),
      scope
    )
    const metrics = Context.get(context, Metrics)
    const staleOwnerRejections = Effect.map(
      Effect.forEach(STALE_OWNER_OPERATIONS, (operation) =>
        metrics.read("open_cowork_cloud_worker_stale_owner_rejections_total", { operation })),
      (counts) => counts.reduce((a, b) => a + b, 0)
    )
    return { scope, metrics, staleOwnerRejections }
  })

const commandStatus = (sessionId: string, commandId: string) =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    return (yield* plane.commands(sessionId)).find((c) => c.id === commandId)!
  })

const assertContiguous = (sequences: ReadonlyArray<number>) =>
  assert.deepStrictEqual(sequences, sequences.map((_, i) => i + 1))

it.effect("a draining worker finishes its active command within the grace, then releases the lease", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const runtime = yield* GatedRuntime
    const worker = yield* startWorker({ workerId: "worker-a", shutdownGraceMs: 10_000 })
    const sessionId = yield* plane.createSession()
    const commandId = yield* plane.enqueue(sessionId, "prompt", "hello")
    const turn = yield* Queue.take(runtime.started)
    assert.deepStrictEqual([turn.commandId, turn.attempt], [commandId, 1])

    const shutdown = yield* Effect.forkChild(Scope.close(worker.scope, Exit.void))
    yield* TestClock.adjust(9_000)
    assert.isUndefined(shutdown.pollUnsafe(), "the worker waits for its active command")
    const second = yield* plane.enqueue(sessionId, "prompt", "after shutdown began")
    yield* runtime.release(commandId, 1)
    yield* Fiber.join(shutdown)

    assert.strictEqual((yield* commandStatus(sessionId, commandId)).status, "acked")
    assert.strictEqual((yield* commandStatus(sessionId, second)).status, "pending", "a draining session takes no new command")
    const events = yield* plane.events(sessionId)
    assertContiguous(events.map((e) => e.sequence))
    assert.deepStrictEqual(events.map((e) => e.type), [
      "session.created", "prompt.submitted", "session.status", "assistant.message", "prompt.submitted",
      "assistant.message", "session.idle"
    ])
    const lease = yield* plane.lease(sessionId)
    assert.isTrue(lease.expiresAt <= (yield* Clock.currentTimeMillis), "the lease is free for another worker")
    assert.strictEqual(yield* worker.staleOwnerRejections, 0)
  }).pipe(Effect.provide(Env)))

it.effect("a command hanging past the grace: the lease is expired and another worker re-runs it at once", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const runtime = yield* GatedRuntime
    const workerA = yield* startWorker({ workerId: "worker-a", shutdownGraceMs: 5_000 })
    const sessionId = yield* plane.createSession()
    const commandId = yield* plane.enqueue(sessionId, "prompt", "hang forever")
    yield* Queue.take(runtime.started)

    const shutdown = yield* Effect.forkChild(Scope.close(workerA.scope, Exit.void))
    yield* TestClock.adjust(5_000)
    yield* Fiber.join(shutdown)
    const expired = yield* plane.lease(sessionId)
    assert.strictEqual(expired.workerId, "worker-a")
    assert.isTrue(expired.expiresAt <= (yield* Clock.currentTimeMillis), "expired at shutdown, not after the TTL")
    assert.strictEqual((yield* commandStatus(sessionId, commandId)).status, "running")

    const workerB = yield* startWorker({ workerId: "worker-b" })
    const rerun = yield* Queue.take(runtime.started)
    assert.deepStrictEqual([rerun.commandId, rerun.attempt], [commandId, 2])
    assert.strictEqual((yield* plane.lease(sessionId)).workerId, "worker-b")
    yield* runtime.release(commandId, 2)
    yield* eventually(Effect.map(commandStatus(sessionId, commandId), (c) => c.status === "acked"), "re-run acked")

    const events = yield* plane.events(sessionId)
    assertContiguous(events.map((e) => e.sequence))
    assert.deepStrictEqual(events.map((e) => e.type), [
      "session.created", "prompt.submitted",
      "session.status", "assistant.message",
      "command.retried", "session.status", "assistant.message", "assistant.message", "session.idle"
    ])
    assert.deepStrictEqual(events[4]!.payload, { commandId, abandonedAttempt: 1, attempt: 2 })
    assert.strictEqual(events.filter((e) => e.type === "session.idle").length, 1, "acked exactly once")
    const command = yield* commandStatus(sessionId, commandId)
    assert.deepStrictEqual([command.status, command.attemptCount], ["acked", 1])
    const messages = yield* plane.messages(sessionId)
    assert.deepStrictEqual(messages.map((m) => [m.role, m.attempt]), [["user", null], ["assistant", 2]])
    yield* Scope.close(workerB.scope, Exit.void)
  }).pipe(Effect.provide(Env)))

it.effect("an abort signal interrupts the running turn: the prompt is cancelled, then the abort command runs", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const runtime = yield* GatedRuntime
    const worker = yield* startWorker({ workerId: "worker-a" })
    const sessionId = yield* plane.createSession()
    const promptId = yield* plane.enqueue(sessionId, "prompt", "long task")
    const queued = yield* plane.enqueue(sessionId, "prompt", "queued behind")
    yield* Queue.take(runtime.started)
    const abortId = yield* plane.abort(sessionId)
    yield* eventually(Effect.map(commandStatus(sessionId, abortId), (c) => c.status === "acked"), "abort acked")

    assert.strictEqual((yield* commandStatus(sessionId, promptId)).status, "cancelled")
    assert.strictEqual((yield* commandStatus(sessionId, queued)).status, "cancelled")
    const events = yield* plane.events(sessionId)
    assertContiguous(events.map((e) => e.sequence))
    const tail = events.slice(-2)
    assert.deepStrictEqual(tail.map((e) => e.type), ["session.idle", "session.aborted"])
    assert.deepStrictEqual(tail[0]!.payload, { commandId: promptId, outcome: "cancelled" })
    assert.strictEqual(yield* plane.status(sessionId), "aborted")
    yield* eventually(Effect.map(plane.lease(sessionId), (l) => l.workerId === null), "lease released")
    yield* Scope.close(worker.scope, Exit.void)
  }).pipe(Effect.provide(Env)))

it.effect("a runtime failure fails the command with runtime.error in the same write; the lease renews every TTL/3", () =>
  Effect.gen(function*() {
    const plane = yield* memoryPlane
    const runtime = yield* GatedRuntime
    const worker = yield* startWorker({ workerId: "worker-a", leaseTtlMs: 3_000 })
    const sessionId = yield* plane.createSession()
    const commandId = yield* plane.enqueue(sessionId, "prompt", "[[fail]]")
    yield* Queue.take(runtime.started)
    // Far past the TTL: the renewal fiber keeps the lease alive.
    for (let i = 0; i < 10; i++) yield* TestClock.adjust(1_000)
    assert.strictEqual((yield* plane.lease(sessionId)).workerId, "worker-a")
    yield* runtime.release(commandId, 1)
    yield* eventually(Effect.map(commandStatus(sessionId, commandId), (c) => c.status === "failed"), "command failed")
    const events = yield* plane.events(sessionId)
    assert.deepStrictEqual(events.slice(-2).map((e) => e.type), ["runtime.error", "session.idle"])
    assert.deepStrictEqual(events.at(-1)!.payload, { commandId, outcome: "failed" })
    yield* Scope.close(worker.scope, Exit.void)
  }).pipe(Effect.provide(Env)))
