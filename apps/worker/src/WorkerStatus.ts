import { Context, Effect, Layer, Ref } from "effect"

/** What the worker's liveness server reports: draining, sessions held, and when the last heartbeat landed. */
export class WorkerStatus extends Context.Service<WorkerStatus, {
  readonly draining: Ref.Ref<boolean>
  readonly activeSessions: Ref.Ref<number>
  /** Epoch millis (Effect `Clock`) of the last successful heartbeat write; undefined before the first. */
  readonly lastHeartbeatAt: Ref.Ref<number | undefined>
}>()("cowork/worker/WorkerStatus") {
  static readonly layer = Layer.effect(WorkerStatus, Effect.gen(function*() {
    return WorkerStatus.of({
      draining: yield* Ref.make(false),
      activeSessions: yield* Ref.make(0),
      lastHeartbeatAt: yield* Ref.make<number | undefined>(undefined)
    })
  }))
}
