import { type EventDraft, RuntimeFailure } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { type CommandCompletion, EventLog, type RuntimeEvent, type RuntimeSession } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { CheckpointCursor } from "../src/CheckpointCursor.ts"
import * as PromptTurn from "../src/PromptTurn.ts"
import { command, lease } from "./support/StubStores.ts"

interface Append {
  readonly types: ReadonlyArray<string>
  readonly completion: CommandCompletion | undefined
}

/** Runs one prompt turn against a recording event log; returns the appends and the processed-commands counter. */
const runTurn = (
  events: Stream.Stream<RuntimeEvent, RuntimeFailure>,
  options: {
    readonly checkpoint?: Partial<CheckpointCursor>
    readonly abortRequested?: Effect.Effect<void>
    readonly abandonedAttempts?: number
    readonly appends?: Array<Append>
  } = {}
) =>
  Effect.gen(function*() {
    const appends: Array<Append> = options.appends ?? []
    const log = Layer.mock(EventLog)({
      append: (_lease, drafts: ReadonlyArray<EventDraft>, completion) =>
        Effect.sync(() => appends.push({ types: drafts.map((d) => d.type), completion })),
      close: (_lease, drafts: ReadonlyArray<EventDraft>, completion) =>
        Effect.sync(() => ({ lastSequence: appends.push({ types: drafts.map((d) => d.type), completion }), released: true }))
    })
    const runtime: RuntimeSession = {
      prompt: () => events,
      exportState: Effect.succeed({ files: new Map() }),
      importState: () => Effect.void
    }
    const checkpoint: CheckpointCursor = {
      enabled: false,
      version: () => 0,
      restore: () => Effect.void,
      save: Effect.succeed(undefined),
      acknowledged: () => Effect.void,
      ...options.checkpoint
    }
    const cmd = command({ abandonedAttempts: options.abandonedAttempts ?? 0, attempt: (options.abandonedAttempts ?? 0) + 1 })
    const processed = yield* Effect.gen(function*() {
      yield* PromptTurn.run(lease(), cmd, {
        runtime: Effect.succeed(runtime),
        abortRequested: options.abortRequested ?? Effect.never,
        checkpoint
      })
      const metrics = yield* Metrics
      return {
        acked: yield* metrics.read("open_cowork_cloud_worker_commands_processed_total", { status: "acked" }),
        failed: yield* metrics.read("open_cowork_cloud_worker_commands_processed_total", { status: "failed" }),
        cancelled: yield* metrics.read("open_cowork_cloud_worker_commands_processed_total", { status: "cancelled" })
      }
    }).pipe(Effect.provide(Layer.merge(log, Metrics.layerTest("worker"))))
    return { appends, processed }
  })

const delta = (text: string): RuntimeEvent => ({ _tag: "AssistantDelta", messageId: "m1", delta: text })
const final: RuntimeEvent = { _tag: "AssistantMessage", messageId: "m1", text: "done" }

it.effect("a turn: running, then the final burst rides in the closing statement with the ack", () =>
  Effect.gen(function*() {
    const { appends, processed } = yield* runTurn(Stream.make(delta("a"), delta("b"), final))
    assert.deepStrictEqual(appends.at(0), { types: ["session.status"], completion: undefined })
    const closing = appends.at(-1)!
    assert.deepStrictEqual(closing.types.slice(-2), ["assistant.message", "session.idle"])
    assert.deepStrictEqual(closing.completion, { commandId: "cmd_1", outcome: "acked", error: undefined, checkpointVersion: undefined })
    assert.strictEqual(appends.flatMap((a) => a.types).filter((t) => t === "assistant.message").length, 3, "every event written once")
    assert.deepStrictEqual(processed, { acked: 1, failed: 0, cancelled: 0 })
  }))

it.effect("a retried attempt opens with command.retried naming the abandoned attempt", () =>
  Effect.gen(function*() {
    const { appends } = yield* runTurn(Stream.make(final), { abandonedAttempts: 1 })
    assert.deepStrictEqual(appends[0]!.types, ["command.retried", "session.status"])
  }))

it.effect("a runtime failure fails the command: runtime.error and session.idle in the acknowledging statement", () =>
  Effect.gen(function*() {
    const { appends, processed } = yield* runTurn(Stream.concat(Stream.make(delta("a")), Stream.fail(new RuntimeFailure({ message: "model down" }))))
    const closing = appends.at(-1)!
    assert.deepStrictEqual(closing.types, ["runtime.error", "session.idle"])
    assert.deepStrictEqual(closing.completion, { commandId: "cmd_1", outcome: "failed", error: "model down", checkpointVersion: undefined })
    assert.deepStrictEqual(processed, { acked: 0, failed: 1, cancelled: 0 })
  }))

it.effect("an abort interrupts the running turn: the command is cancelled", () =>
  Effect.gen(function*() {
    const abort = yield* Deferred.make<void>()
    yield* Deferred.succeed(abort, undefined)
    const { appends, processed } = yield* runTurn(Stream.never, { abortRequested: Deferred.await(abort) })
    assert.deepStrictEqual(appends.at(-1)!.types, ["session.idle"])
    assert.strictEqual(appends.at(-1)!.completion!.outcome, "cancelled")
    assert.deepStrictEqual(processed, { acked: 0, failed: 0, cancelled: 1 })
  }))

it.effect("with checkpoints: the final burst waits for the save and rides in the closing statement with the saved version", () =>
  Effect.gen(function*() {
    const appends: Array<Append> = []
    const acknowledged: Array<number | undefined> = []
    const save = Effect.sync(() => {
      assert.strictEqual(appends.length, 1, "the final burst is not written before the state is saved")
      return 1_000_001
    })
    yield* runTurn(Stream.make(final), {
      appends,
      checkpoint: { enabled: true, save, acknowledged: (version) => Effect.sync(() => { acknowledged.push(version) }) }
    })
    assert.deepStrictEqual(appends.map((a) => a.types), [["session.status"], ["assistant.message", "session.idle"]])
    assert.strictEqual(appends.at(-1)!.completion!.checkpointVersion, 1_000_001)
    assert.deepStrictEqual(acknowledged, [1_000_001])
  }))

it.effect("with checkpoints: a save slower than LAST_BURST_HOLD does not hold the final burst back", () =>
  Effect.gen(function*() {
    const appends: Array<Append> = []
    const release = yield* Deferred.make<void>()
    const save = Effect.as(Deferred.await(release), 1_000_002)
    const turn = yield* Effect.forkChild(runTurn(Stream.make(final), { appends, checkpoint: { enabled: true, save } }))
    // Poll with a bound: the clock moves past the hold until the burst is written on its own.
    for (let step = 0; step < 100 && appends.length < 2; step++) {
      yield* TestClock.adjust(PromptTurn.LAST_BURST_HOLD)
      yield* Effect.yieldNow
    }
    assert.deepStrictEqual(appends.map((a) => a.types), [["session.status"], ["assistant.message"]], "written while the save runs")
    assert.isUndefined(appends[1]!.completion)
    yield* Deferred.succeed(release, undefined)
    yield* Fiber.join(turn)
    assert.deepStrictEqual(appends.map((a) => a.types), [["session.status"], ["assistant.message"], ["session.idle"]])
    assert.strictEqual(appends.at(-1)!.completion!.checkpointVersion, 1_000_002)
  }))

it.effect("with checkpoints: a state that did not change is not saved, and the ack leaves checkpoint_version", () =>
  Effect.gen(function*() {
    const appends: Array<Append> = []
    const acknowledged: Array<number | undefined> = []
    yield* runTurn(Stream.make(final), {
      appends,
      checkpoint: { enabled: true, save: Effect.succeed(undefined), acknowledged: (version) => Effect.sync(() => { acknowledged.push(version) }) }
    })
    assert.deepStrictEqual(appends.map((a) => a.types), [["session.status"], ["assistant.message", "session.idle"]])
    assert.isUndefined(appends.at(-1)!.completion!.checkpointVersion)
    assert.deepStrictEqual(acknowledged, [undefined])
  }))
