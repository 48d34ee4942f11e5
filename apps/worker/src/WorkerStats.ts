import { Context, Effect, Layer, Ref } from "effect"

export interface WorkerStatsSnapshot {
  /** `open_cowork_cloud_worker_stale_owner_rejections_total` */
  readonly staleOwnerRejections: number
  readonly reapedLeases: number
  readonly reaperCapHits: number
  readonly commandsCompleted: number
  readonly activeSessions: number
}

/** Counters the worker keeps for the metrics exposition. */
export class WorkerStats extends Context.Service<WorkerStats, {
  readonly staleOwnerRejections: Ref.Ref<number>
  readonly reapedLeases: Ref.Ref<number>
  readonly reaperCapHits: Ref.Ref<number>
  readonly commandsCompleted: Ref.Ref<number>
  readonly activeSessions: Ref.Ref<number>
  readonly snapshot: Effect.Effect<WorkerStatsSnapshot>
}>()("cowork/worker/WorkerStats") {
  static readonly layer = Layer.effect(WorkerStats, Effect.gen(function*() {
    const staleOwnerRejections = yield* Ref.make(0)
    const reapedLeases = yield* Ref.make(0)
    const reaperCapHits = yield* Ref.make(0)
    const commandsCompleted = yield* Ref.make(0)
    const activeSessions = yield* Ref.make(0)
    const snapshot = Effect.all({
      staleOwnerRejections: Ref.get(staleOwnerRejections),
      reapedLeases: Ref.get(reapedLeases),
      reaperCapHits: Ref.get(reaperCapHits),
      commandsCompleted: Ref.get(commandsCompleted),
      activeSessions: Ref.get(activeSessions)
    })
    return WorkerStats.of({ staleOwnerRejections, reapedLeases, reaperCapHits, commandsCompleted, activeSessions, snapshot })
  }))
}
