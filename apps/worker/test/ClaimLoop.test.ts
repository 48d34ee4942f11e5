import { Metrics } from "@cowork/observability"
import { AgentRuntime, ChangeFeed, CommandQueue, type CommandSignal, EventLog } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, PubSub, Ref, Stream } from "effect"
import { CheckpointCursors } from "../src/CheckpointCursor.ts"
import * as ClaimLoop from "../src/ClaimLoop.ts"
import { ClaimWake } from "../src/ClaimWake.ts"
import * as CommandSignals from "../src/CommandSignals.ts"
import { HeldSessions } from "../src/HeldSessions.ts"
import { SessionFibers } from "../src/SessionSupervisor.ts"
import { WarmRuntimes } from "../src/WarmRuntimes.ts"
import { WorkerConfig } from "../src/WorkerConfig.ts"
import { WorkerStatus } from "../src/WorkerStatus.ts"
import { lease, settle, stubLeaseStore } from "./support/StubStores.ts"
import { silentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

/** A worker's claim side over a lease store that records each claim's limit and finds nothing. */
const env = (limits: Array<number>) =>
  Layer.mergeAll(
    stubLeaseStore({ claim: (_worker, limit) => Effect.sync(() => { limits.push(limit) }).pipe(Effect.as([])) }),
    Layer.effect(ChangeFeed, Effect.map(PubSub.unbounded<CommandSignal>(), (signals) =>
      silentChangeFeed({
        commandSignals: Effect.map(PubSub.subscribe(signals), Stream.fromSubscription),
        notifyCommand: (signal) => Effect.asVoid(PubSub.publish(signals, signal))
      }))),
    Metrics.layerTest("worker"),
    ClaimWake.layer,
    SessionFibers.layer,
    WorkerConfig.layerWith({ concurrency: 3, pollIntervalMs: 60_000 }),
    // A session is never started here: what it would run on is never touched.
    Layer.mock(AgentRuntime)({}),
    Layer.mock(CommandQueue)({}),
    Layer.mock(EventLog)({}),
    Layer.mock(WarmRuntimes)({ size: () => 0 }),
    Layer.mock(CheckpointCursors)({ make: () => { throw new Error("no session starts in this test") } })
  ).pipe(Layer.provideMerge(HeldSessions.layer.pipe(Layer.provideMerge(WorkerStatus.layer))))

it.effect("a claim asks for the free capacity only, and nothing while draining", () => {
  const limits: Array<number> = []
  return Effect.gen(function*() {
    const held = yield* HeldSessions
    const status = yield* WorkerStatus
    yield* ClaimLoop.claimPass
    yield* held.hold(lease("ses_a", 1))
    yield* ClaimLoop.claimPass
    yield* held.hold(lease("ses_b", 1))
    yield* held.hold(lease("ses_c", 1))
    yield* ClaimLoop.claimPass
    yield* held.forget(lease("ses_c", 1))
    yield* Ref.set(status.draining, true)
    yield* ClaimLoop.claimPass
    assert.deepStrictEqual(limits, [3, 2])
  }).pipe(Effect.provide(env(limits)))
})

it.effect("a command signal for a session not held here wakes the claim loop at once (no clock time passes)", () => {
  const limits: Array<number> = []
  return Effect.gen(function*() {
    const feed = yield* ChangeFeed
    const held = yield* HeldSessions
    yield* CommandSignals.follow
    yield* Effect.forkScoped(ClaimLoop.run)
    yield* settle
    assert.deepStrictEqual(limits, [3], "the first pass runs at start")
    yield* held.hold(lease("ses_held", 1))
    yield* feed.notifyCommand({ kind: "prompt", sessionId: "ses_held" })
    yield* settle
    assert.deepStrictEqual(limits, [3], "a signal for a session held here is its own fiber's business")
    yield* feed.notifyCommand({ kind: "prompt", sessionId: "ses_other" })
    yield* settle
    assert.deepStrictEqual(limits, [3, 2])
  }).pipe(Effect.scoped, Effect.provide(env(limits)))
})
