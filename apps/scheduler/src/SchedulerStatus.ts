import { Context, Effect, Layer, Ref } from "effect"

/** This scheduler's process state: draining once shutdown begins (readiness answers 503), and ticks run so far. */
export class SchedulerStatus extends Context.Service<SchedulerStatus, {
  readonly draining: Ref.Ref<boolean>
  readonly ticks: Ref.Ref<number>
}>()("cowork/SchedulerStatus") {
  static readonly layer = Layer.effect(
    SchedulerStatus,
    Effect.all({ draining: Ref.make(false), ticks: Ref.make(0) }).pipe(Effect.map((refs) => SchedulerStatus.of(refs)))
  )
}
