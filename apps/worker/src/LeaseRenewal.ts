import type { Lease } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { LeaseStore } from "@cowork/services"
import { Effect } from "effect"
import { fenced } from "./Fencing.ts"
import { WorkerConfig } from "./WorkerConfig.ts"

/**
 * Renews the lease every TTL/3 for as long as it runs; fails with `StaleOwner` (counted as `renewal_lost`) once the
 * lease is no longer live, which ends the session fiber it races against.
 */
export const renewForever = (lease: Lease) =>
  Effect.gen(function*() {
    const { leaseTtlMs: ttl } = yield* WorkerConfig
    const leases = yield* LeaseStore
    const metrics = yield* Metrics
    return yield* Effect.sleep(Math.max(1, Math.floor(ttl / 3))).pipe(
      Effect.andThen(fenced(leases.renew(lease, ttl)).pipe(
        Effect.tapError(() => metrics.inc("open_cowork_cloud_worker_lease_denials_total", { reason: "renewal_lost" }))
      )),
      Effect.andThen(metrics.inc("open_cowork_cloud_worker_lease_renewals_total")),
      Effect.forever
    )
  })
