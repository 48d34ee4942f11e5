import type { Lease, RuntimeFailure } from "@cowork/domain"
import { AgentRuntime, type RuntimeSession } from "@cowork/services"
import { Effect, Exit, Ref, Scope } from "effect"
import { type CheckpointCursor, CheckpointCursors } from "./CheckpointCursor.ts"
import type { CheckpointRestoreFailed } from "./SessionCheckpoints.ts"
import { WarmRuntimes } from "./WarmRuntimes.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/** The agent runtime of one leased session, opened on first use, and the session's checkpoint cursor. */
export interface LeasedRuntime {
  readonly open: Effect.Effect<RuntimeSession, RuntimeFailure>
  readonly checkpoint: CheckpointCursor
  /** Loads the lease's checkpoint, unless a warm runtime already holds exactly it; before anything runs. */
  readonly restore: Effect.Effect<void, CheckpointRestoreFailed | RuntimeFailure>
  /** After a clean release: keeps the runtime warm for this session's next claim (not while draining). */
  readonly keepWarm: Effect.Effect<void>
}

/**
 * Acquires the lease's runtime in the caller's scope. A runtime this worker kept warm is reused only when it holds
 * exactly the lease's checkpoint: then the restore (object-store reads) is skipped. Anything else is closed and the
 * session restores from the store. The runtime closes with the scope unless it was kept warm.
 */
export const acquire = Effect.fnUntraced(function*(lease: Lease) {
  const agentRuntime = yield* AgentRuntime
  const warm = yield* WarmRuntimes
  const cursors = yield* CheckpointCursors
  const status = yield* WorkerStatus

  const cached = yield* warm.take(lease.sessionId)
  let session: RuntimeSession | undefined
  const checkpoint = cursors.make(lease, () => session)
  const reuse = cached !== undefined && checkpoint.enabled && cached.version === checkpoint.version()
  if (cached !== undefined && !reuse) yield* Scope.close(cached.scope, Exit.void)
  const runtimeScope = reuse ? cached.scope : yield* Scope.make()
  if (reuse) session = cached.runtime
  let keptWarm = false
  yield* Effect.addFinalizer(() => keptWarm ? Effect.void : Scope.close(runtimeScope, Exit.void))

  const open = Effect.suspend(() =>
    session !== undefined
      ? Effect.succeed(session)
      : agentRuntime.open(lease.sessionId, { orgId: lease.orgId }).pipe(
        Effect.provideService(Scope.Scope, runtimeScope),
        Effect.tap((opened) => Effect.sync(() => { session = opened })),
        // The checkpoint holds the state: when this runtime closes (released and not kept warm, evicted from the warm
        // set, the lease lost or handed over), its local files go too.
        Effect.tap((opened) => checkpoint.enabled ? opened.discardOnClose ?? Effect.void : Effect.void)
      )
  )
  return {
    open,
    checkpoint,
    restore: checkpoint.enabled && !reuse ? Effect.flatMap(open, checkpoint.restore) : Effect.void,
    keepWarm: Effect.gen(function*() {
      if (!checkpoint.enabled || session === undefined || (yield* Ref.get(status.draining))) return
      keptWarm = true
      yield* warm.keep(lease.sessionId, { runtime: session, version: checkpoint.version(), scope: runtimeScope })
    })
  } satisfies LeasedRuntime
})
