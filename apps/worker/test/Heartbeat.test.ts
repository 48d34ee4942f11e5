import { Metrics } from "@cowork/observability"
import { ScriptedRuntime } from "@cowork/runtime"
import { Heartbeats, type HeartbeatInput } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Clock, Effect, Exit, Layer, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Heartbeat from "../src/Heartbeat.ts"
import { HeldSessions } from "../src/HeldSessions.ts"
import { SessionCheckpoints } from "../src/SessionCheckpoints.ts"
import { WorkerConfig, type WorkerSettings } from "../src/WorkerConfig.ts"
import { WorkerStatus } from "../src/WorkerStatus.ts"
import { lease, settle } from "./support/StubStores.ts"
import { testScope } from "../../../test/support/TestScope.ts"

/** The heartbeat's environment around a stub `beat`: scripted runtime, no-op checkpoints, held sessions, status. */
const heartbeatEnv = (beat: Heartbeats["Service"]["beat"], settings: Partial<WorkerSettings>, checkpoints: boolean) =>
  Layer.mergeAll(
    Layer.succeed(Heartbeats, Heartbeats.of({ beat, list: () => Effect.succeed([]), prune: () => Effect.succeed(0) })),
    Metrics.layerTest("worker"),
    ScriptedRuntime.layer,
    WorkerConfig.layerWith(settings),
    Layer.succeed(SessionCheckpoints, SessionCheckpoints.of({
      enabled: checkpoints,
      restore: () => Effect.succeed(0),
      save: () => Effect.succeed(undefined),
      prune: () => Effect.void
    }))
  ).pipe(Layer.provideMerge(HeldSessions.layer.pipe(Layer.provideMerge(WorkerStatus.layer))))

it.effect("beats active, then draining once shutdown began, then stopped; the age gauge follows the last beat", () => {
  const beats: Array<HeartbeatInput> = []
  let failing = false
  const env = heartbeatEnv(
    (input) => Effect.suspend(() => failing ? Effect.die("database down") : Effect.sync(() => { beats.push(input) })),
    { workerId: "worker-hb", heartbeatIntervalMs: 5_000 },
    true
  )
  return Effect.gen(function*() {
    const metrics = yield* Metrics
    const status = yield* WorkerStatus
    const held = yield* HeldSessions
    const age = metrics.read("open_cowork_cloud_worker_heartbeat_age_ms")
    yield* held.hold(lease("ses_a", 1))
    const scope = yield* testScope
    yield* Heartbeat.start.pipe(Scope.provide(scope))
    yield* settle
    assert.deepStrictEqual(beats.map((b) => [b.status, b.currentLoad, b.activeWorkIds]), [["active", 1, ["ses_a"]]])
    assert.include(beats[0]!.capabilities, "checkpoints")
    assert.include(beats[0]!.capabilities, "runtime:scripted")

    failing = true
    for (let i = 0; i < 7; i++) yield* TestClock.adjust(1_000).pipe(Effect.andThen(settle))
    assert.strictEqual(yield* age, 7_000, "a failed beat leaves the age growing")
    failing = false
    yield* Ref.set(status.draining, true)
    for (let i = 0; i < 3; i++) yield* TestClock.adjust(1_000).pipe(Effect.andThen(settle))
    assert.strictEqual(beats.at(-1)!.status, "draining")
    assert.isBelow(yield* age, 1_000)
    yield* Scope.close(scope, Exit.void)
    assert.strictEqual(beats.at(-1)!.status, "stopped")
  }).pipe(Effect.provide(env))
})

it.effect("idle, a worker beats every idle interval and says so in its row; once it holds a session, every interval", () => {
  const beats: Array<HeartbeatInput & { readonly at: number }> = []
  const env = heartbeatEnv(
    (input) => Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => { beats.push({ ...input, at }) })),
    { workerId: "worker-idle", heartbeatIntervalMs: 5_000, idleHeartbeatIntervalMs: 60_000 },
    false
  )
  return Effect.gen(function*() {
    const metrics = yield* Metrics
    const held = yield* HeldSessions
    yield* Heartbeat.start
    yield* settle
    assert.deepStrictEqual(beats.map((b) => [b.at, b.intervalMs, b.currentLoad]), [[0, 60_000, 0]])
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_worker_heartbeat_interval_ms"), 60_000)
    for (let i = 0; i < 59; i++) yield* TestClock.adjust(1_000).pipe(Effect.andThen(settle))
    assert.strictEqual(beats.length, 1, "no beat within the idle interval")
    yield* TestClock.adjust(1_000).pipe(Effect.andThen(settle))
    assert.deepStrictEqual(beats.map((b) => b.at), [0, 60_000])
    yield* TestClock.adjust(12_000).pipe(Effect.andThen(settle))
    yield* held.hold(lease("ses_busy", 1))
    yield* TestClock.adjust(2_999).pipe(Effect.andThen(settle))
    assert.strictEqual(beats.length, 2)
    yield* TestClock.adjust(1).pipe(Effect.andThen(settle))
    assert.deepStrictEqual(
      beats.slice(2).map((b) => [b.at, b.intervalMs, b.currentLoad]),
      [[75_000, 5_000, 1]],
      "busy: beats at the next heartbeat interval, as a busy worker would"
    )
    yield* TestClock.adjust(5_000).pipe(Effect.andThen(settle))
    assert.deepStrictEqual(beats.slice(3).map((b) => [b.at, b.intervalMs]), [[80_000, 5_000]])
  }).pipe(Effect.scoped, Effect.provide(env))
})
