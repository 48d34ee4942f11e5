import type { Lease, StaleOwner } from "@cowork/domain"
import { Context, Effect, Layer, type Redacted } from "effect"
import { makeLeaseStoreMemory } from "./LeaseStoreMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"

export interface ReapResult {
  /** Expired leases recovered this tick. */
  readonly reaped: number
  /** True when the tick stopped at the drain cap with expired leases possibly left over. */
  readonly capHit: boolean
  /** Commands returned to `pending` (attempt_count + 1). */
  readonly requeued: number
  /** Commands that exhausted their attempts and became `dead`. */
  readonly dead: number
  /**
   * How long until the first lease still held (by any worker) expires, by the store's clock; `null` when no lease is
   * held. The reaper sleeps until then: a worker that dies is reaped when its lease expires, not a tick later.
   */
  readonly nextExpiryInMs: number | null
}

export interface ReapOptions {
  readonly batchSize: number
  readonly drainCap: number
  readonly maxAttempts: number
}

/**
 * Fenced session leases `(session_id, worker_id, epoch, expires_at)`. The epoch increases on every claim (and
 * on every reap); expiry is computed with the database clock.
 */
export class LeaseStore extends Context.Service<LeaseStore, {
  /**
   * Claims up to `limit` runnable sessions (a pending command, no live lease) with `FOR UPDATE SKIP LOCKED`.
   * A claim also returns any command still `running` under an older epoch to `pending` (attempt_count + 1, or
   * `dead` past `maxAttempts`), so the new owner re-runs it.
   *
   * A registered (managed) worker claims only while it is `active` in an `active` pool and presents a valid
   * `credential` (`ocw_<id>_<secret>`), within the pool's `maxConcurrentWork` and `maxWorkers`; an unregistered
   * worker without a credential is unmanaged and claims as before.
   */
  readonly claim: (
    workerId: string,
    limit: number,
    ttlMs: number,
    maxAttempts: number,
    credential?: Redacted.Redacted<string>
  ) => Effect.Effect<ReadonlyArray<Lease>>
  /** Extends the lease by `ttlMs` from now (database clock). Fails with `StaleOwner` if it is no longer live. */
  readonly renew: (lease: Lease, ttlMs: number) => Effect.Effect<void, StaleOwner>
  /**
   * Gives the session up when its mailbox is empty: returns false (lease kept) if a command is pending, so the
   * owner keeps running. Fails with `StaleOwner` if the lease is no longer live.
   */
  readonly releaseIfIdle: (lease: Lease) => Effect.Effect<boolean, StaleOwner>
  /** Expires the lease now (shutdown), so another worker claims it at once. Its running command stays for the claimer. */
  readonly expire: (lease: Lease) => Effect.Effect<void, StaleOwner>
  /** Recovers expired leases in batches with `SKIP LOCKED`, stopping at `drainCap` per tick. */
  readonly reapExpired: (options: ReapOptions) => Effect.Effect<ReapResult>
}>()("cowork/LeaseStore") {
  /** Over the shared `MemoryDatabase`, with the same gating, fencing and expiry (by the Effect `Clock`). */
  static readonly layerMemory: Layer.Layer<LeaseStore, never, MemoryDatabase> = Layer.effect(
    LeaseStore,
    Effect.map(Effect.service(MemoryDatabase), makeLeaseStoreMemory)
  )
}
