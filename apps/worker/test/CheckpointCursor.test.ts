import type { Lease } from "@cowork/domain"
import type { RuntimeSession } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CheckpointCursors } from "../src/CheckpointCursor.ts"
import { SessionCheckpoints } from "../src/SessionCheckpoints.ts"
import { lease } from "./support/StubStores.ts"

const runtime: RuntimeSession = {
  prompt: () => { throw new Error("unused") },
  exportState: Effect.succeed({ files: new Map() }),
  importState: () => Effect.void
}

const recording = () => {
  const calls: Array<string> = []
  const layer = CheckpointCursors.layer.pipe(Layer.provide(Layer.succeed(SessionCheckpoints, SessionCheckpoints.of({
    enabled: true,
    restore: (l: Lease) => Effect.sync(() => { calls.push(`restore@${l.checkpointVersion}`) }).pipe(Effect.as(l.checkpointVersion ?? 0)),
    save: (_l, _s, current) => Effect.sync(() => { calls.push(`save-after-${current}`) }).pipe(Effect.as(current + 1)),
    prune: () => Effect.sync(() => { calls.push("prune") })
  }))))
  return { calls, layer }
}

it.effect("the cursor starts at the lease's checkpoint, saves after the acknowledged version, and prunes every 4th save", () => {
  const { calls, layer } = recording()
  return Effect.gen(function*() {
    const cursors = yield* CheckpointCursors
    let open: RuntimeSession | undefined
    const cursor = cursors.make(lease("ses_a", 1, { checkpointVersion: 7 }), () => open)
    assert.strictEqual(cursor.version(), 7)
    assert.isUndefined(yield* cursor.save, "no runtime opened: nothing to save")
    open = runtime
    yield* cursor.restore(runtime)
    assert.strictEqual(yield* cursor.save, 8)
    for (const version of [1_000_001, 1_000_002, 1_000_003, 1_000_004, 1_000_005, undefined]) {
      yield* cursor.acknowledged(version)
      yield* Effect.yieldNow
    }
    assert.strictEqual(cursor.version(), 1_000_005, "an ack without a save leaves the cursor")
    assert.deepStrictEqual(calls, ["restore@7", "save-after-7", "prune", "prune"], "pruned after the 1st and 5th save only")
  }).pipe(Effect.provide(layer))
})
