import type { Conflict, NotFound, SessionStatus } from "@cowork/domain"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { makeProjectionsMemory } from "./ProjectionsMemory.ts"

/** How far a session's projection is from its event log, as an operator checks it. */
export interface ProjectionStatus {
  readonly sessionId: string
  readonly status: SessionStatus
  /** The log's tip: the last sequence allocated. */
  readonly lastSequence: number
  /** The last sequence the projection has applied. */
  readonly projectedSequence: number
  /** `lastSequence - projectedSequence`. */
  readonly lagEvents: number
  /** Lowest retained sequence; a pruned log (> 1) cannot be replayed from the start. */
  readonly earliestSequence: number
  /** Message rows the projection holds now. */
  readonly messageRows: number
  /** Message rows a replay of the log produces. */
  readonly expectedMessageRows: number
  /** The status a replay of the log produces. */
  readonly expectedStatus: SessionStatus
  /** No lag, and the stored rows and status equal a replay of the log. */
  readonly consistent: boolean
}

export interface ProjectionRepair {
  readonly before: ProjectionStatus
  readonly after: ProjectionStatus
  /** False when the projection already matched the log (nothing was rewritten). */
  readonly changed: boolean
}

/**
 * Operator view of session projections: compare one with its event log, rebuild it from the log, and the worst lag
 * across sessions (the projection-lag gauge).
 */
export class Projections extends Context.Service<Projections, {
  readonly status: (sessionId: string) => Effect.Effect<ProjectionStatus, NotFound>
  /**
   * Rebuilds the projection (status, message rows, projected sequence) by replaying the log, in one transaction
   * that holds the projection row, so no append interleaves. Idempotent. `Conflict` when the log was pruned.
   */
  readonly repair: (sessionId: string) => Effect.Effect<ProjectionRepair, NotFound | Conflict>
  /** Largest `last_sequence - projected_sequence` over all sessions (0 when every projection is current). */
  readonly maxLag: Effect.Effect<number>
}>()("cowork/Projections") {
  static readonly layerMemory: Layer.Layer<Projections, never, MemoryDatabase> = Layer.effect(
    Projections,
    Effect.map(Effect.service(MemoryDatabase), makeProjectionsMemory)
  )
}
