import {
  PgArtifacts,
  PgChangeFeed,
  PgChannelStore,
  PgDeliveryFeed,
  PgCommandQueue,
  PgControlPlaneStatus,
  PgEventLog,
  PgHeartbeats,
  PgLeaseStore,
  PgProjections,
  PgQuotas,
  PgRetention,
  PgQueueControls,
  PgSessionStore,
  PgThreads,
  PgTokens,
  PgWorkerRegistry
} from "@cowork/postgres"
import { ObjectStore } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { ControlPlaneHarness } from "../../../services/test/support/ControlPlaneHarness.ts"
import * as TestDatabase from "../../../../test/support/TestDatabase.ts"

/**
 * Postgres keeps time by its own clock, so `elapse` moves every stored time the rules compare with `now()` back by
 * `ms`: lease and credential expiry, heartbeat age, token expiry, command and event age, a session's last change, delivery
 * and provider-event claims, delivery retry times and artifact age.
 */
const elapse = (ms: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const back = `$1::float8 * interval '1 millisecond'`
    yield* sql.unsafe(`UPDATE cloud_worker_leases SET expires_at = expires_at - ${back}`, [ms])
    yield* sql.unsafe(`UPDATE cloud_worker_credentials SET expires_at = expires_at - ${back}, created_at = created_at - ${back}`, [ms])
    yield* sql.unsafe(`UPDATE cloud_worker_heartbeats SET last_seen_at = last_seen_at - ${back}`, [ms])
    yield* sql.unsafe(`UPDATE cloud_api_tokens SET expires_at = expires_at - ${back} WHERE expires_at IS NOT NULL`, [ms])
    yield* sql.unsafe(`UPDATE cloud_session_commands SET created_at = created_at - ${back}`, [ms])
    yield* sql.unsafe(`UPDATE cloud_session_events SET created_at = created_at - ${back}`, [ms])
    yield* sql.unsafe(`UPDATE cloud_session_projections SET updated_at = updated_at - ${back}`, [ms])
    yield* sql.unsafe(
      `UPDATE cloud_channel_deliveries SET next_attempt_at = next_attempt_at - ${back}, claim_expires_at = claim_expires_at - ${back}`,
      [ms]
    )
    yield* sql.unsafe(
      `UPDATE cloud_channel_provider_events SET claim_expires_at = claim_expires_at - ${back}, completed_at = completed_at - ${back}`,
      [ms]
    )
    yield* sql.unsafe(`UPDATE cloud_artifacts SET created_at = created_at - ${back}`, [ms])
  }).pipe(Effect.orDie)

const services = Layer.mergeAll(
  PgLeaseStore.layer,
  PgCommandQueue.layer,
  PgEventLog.layer,
  PgProjections.layer,
  PgHeartbeats.layer,
  PgChangeFeed.layer,
  PgSessionStore.layer,
  PgTokens.layer,
  PgWorkerRegistry.layer,
  PgArtifacts.layer,
  PgControlPlaneStatus.layer,
  PgChannelStore.layer,
  PgDeliveryFeed.layer,
  PgThreads.layer,
  PgQuotas.layer,
  PgRetention.layer,
  PgQueueControls.layer
).pipe(Layer.provideMerge(ObjectStore.layerMemory))

/** A fresh migrated database per test. */
export const pgHarness: ControlPlaneHarness<SqlClient.SqlClient> = {
  name: "postgres",
  layer: Layer.suspend(() => services.pipe(Layer.provideMerge(TestDatabase.layer({ maxConnections: 4 })))),
  elapse
}
