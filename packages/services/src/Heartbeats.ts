import type { WorkerHeartbeat, WorkerRefused } from "@cowork/domain"
import { Context, Effect, Layer, type Redacted } from "effect"
import { makeHeartbeatsMemory } from "./HeartbeatsMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"

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
  /** A managed worker's `ocw_<id>_<secret>`; checked on every beat. */
  readonly credential?: Redacted.Redacted<string> | undefined
  /** The longest time until this process beats again; readers judge the row's freshness by it. */
  readonly intervalMs?: number | undefined
}

export class Heartbeats extends Context.Service<Heartbeats, {
  /**
   * Upserts this process's heartbeat; `last_seen_at` is the database clock. A registered worker must present a
   * valid credential and not be retired or revoked, else `WorkerRefused` and nothing is written.
   */
  readonly beat: (input: HeartbeatInput) => Effect.Effect<void, WorkerRefused>
  /**
   * Every heartbeat with its age, by worker id, as `observedHeartbeat` shows it: `fresh` by `isHeartbeatFresh`; a
   * row that stopped beating without a final status reads `unhealthy` with no active work. With `orgId` (an org
   * principal's view): only the processes that serve that org (unmanaged ones, saas_operated pools, the org's own
   * pools), with `activeWorkIds` narrowed to that org's sessions.
   */
  readonly list: (freshWithinMs: number, orgId?: string | undefined) => Effect.Effect<ReadonlyArray<WorkerHeartbeat>>
  /** Deletes heartbeat rows last seen more than `retentionMs` ago (by the store's clock); returns how many. */
  readonly prune: (retentionMs: number) => Effect.Effect<number>
}>()("cowork/Heartbeats") {
  static readonly layerMemory: Layer.Layer<Heartbeats, never, MemoryDatabase> = Layer.effect(
    Heartbeats,
    Effect.map(Effect.service(MemoryDatabase), makeHeartbeatsMemory)
  )
}
