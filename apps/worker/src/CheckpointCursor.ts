import type { Lease } from "@cowork/domain"
import type { RuntimeSession } from "@cowork/services"
import { Context, Effect, FiberMap, Layer } from "effect"
import { type CheckpointRestoreFailed, SessionCheckpoints } from "./SessionCheckpoints.ts"

/** Checkpoints are pruned every this many saves (VERSIONS_PER_EPOCH is a multiple, so a lease's first save prunes). */
const PRUNE_EVERY = 4

/** A held session's checkpoint position: the version last restored or acknowledged, and the save of the next one. */
export interface CheckpointCursor {
  readonly enabled: boolean
  readonly version: () => number
  /** Loads the lease's checkpoint into the runtime; the cursor starts there. */
  readonly restore: (runtime: RuntimeSession) => Effect.Effect<void, CheckpointRestoreFailed>
  /** Saves the runtime's state as the next version (undefined when disabled, no runtime was opened, or the state is unchanged). */
  readonly save: Effect.Effect<number | undefined>
  /**
   * The ack statement moved `checkpoint_version` to `version`: the cursor follows, and old versions are pruned
   * beside the session, off the ack path (the first save of a lease, which also clears what earlier owners left,
   * and every PRUNE_EVERY-th).
   */
  readonly acknowledged: (version: number | undefined) => Effect.Effect<void>
}

/** Makes the cursor of each held session; owns the background prunes (one at a time per session, best effort). */
export class CheckpointCursors extends Context.Service<CheckpointCursors, {
  readonly make: (lease: Lease, runtime: () => RuntimeSession | undefined) => CheckpointCursor
}>()("cowork/worker/CheckpointCursors") {
  static readonly layer = Layer.effect(CheckpointCursors, Effect.gen(function*() {
    const checkpoints = yield* SessionCheckpoints
    const pruning = yield* FiberMap.make<string>()
    return CheckpointCursors.of({
      make: (lease, runtime) => {
        let version = lease.checkpointVersion ?? 0
        return {
          enabled: checkpoints.enabled,
          version: () => version,
          restore: (session) =>
            checkpoints.restore(lease, session).pipe(Effect.tap((restored) => Effect.sync(() => { version = restored }))),
          save: Effect.suspend(() => {
            const session = runtime()
            return session === undefined ? Effect.succeed(undefined) : checkpoints.save(lease, session, version)
          }),
          acknowledged: (acked) =>
            Effect.suspend(() => {
              if (acked === undefined) return Effect.void
              version = acked
              return acked % PRUNE_EVERY === 1
                ? FiberMap.run(pruning, lease.sessionId, checkpoints.prune(lease), { onlyIfMissing: true }).pipe(Effect.asVoid)
                : Effect.void
            })
        }
      }
    })
  }))
}
