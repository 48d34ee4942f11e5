import type { WorkerHeartbeat } from "@cowork/domain"
import { Context, type Effect } from "effect"

export interface HeartbeatInput {
  readonly workerId: string
  readonly role: "worker" | "scheduler"
  readonly poolId: string | null
  readonly status: string
  readonly version: string
  readonly region: string | null
  readonly capabilities: ReadonlyArray<string>
  readonly currentLoad: number
  readonly activeWorkIds: ReadonlyArray<string>
}

export class Heartbeats extends Context.Service<Heartbeats, {
  /** Upserts this process's heartbeat; `last_seen_at` is the database clock. */
  readonly beat: (input: HeartbeatInput) => Effect.Effect<void>
  /** Every heartbeat with its age; `fresh` when younger than `freshWithinMs`. */
  readonly list: (freshWithinMs: number) => Effect.Effect<ReadonlyArray<WorkerHeartbeat>>
}>()("cowork/Heartbeats") {}
