import { NotFound } from "@cowork/domain"
import { nothingEnded, OFFBOARDED_DELIVERY_ERROR, Offboarding, offboardingCancelEvents, offboardingReport, type OrgActivity } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { appendEvents } from "./AppendEvents.ts"
import { notifyRevocations } from "./Channels.ts"

/** Offboarding over the control-plane tables, in one transaction (cloud_orgs.offboarded_at, migration 33). */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const count = (rows: ReadonlyArray<unknown>) => rows.length

  const activityOf = (orgId: string) =>
    Effect.gen(function*() {
      const rows = yield* sql.unsafe<{ [K in keyof OrgActivity]: number }>(
        `SELECT
           (SELECT count(*)::int FROM cloud_api_tokens WHERE org_id = $1 AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > now())) AS "liveApiTokens",
           (SELECT count(*)::int FROM cloud_browser_sessions WHERE org_id = $1 AND revoked_at IS NULL
              AND idle_expires_at > now() AND absolute_expires_at > now()) AS "liveBrowserSessions",
           (SELECT count(*)::int FROM cloud_session_commands WHERE org_id = $1 AND status = 'pending') AS "pendingCommands",
           (SELECT count(*)::int FROM cloud_session_commands WHERE org_id = $1 AND status = 'running') AS "runningCommands",
           (SELECT count(*)::int FROM cloud_sessions WHERE org_id = $1 AND aborted_at IS NULL) AS "openSessions",
           (SELECT count(*)::int FROM cloud_workflows WHERE org_id = $1 AND status <> 'archived') AS "activeWorkflows",
           (SELECT count(*)::int FROM cloud_worker_credentials c
              JOIN cloud_workers w ON w.id = c.worker_id JOIN cloud_worker_pools p ON p.id = w.pool_id
              WHERE p.org_id = $1 AND c.revoked_at IS NULL AND c.expires_at > now()) AS "liveWorkerCredentials",
           (SELECT count(*)::int FROM cloud_byok_keys WHERE org_id = $1) AS "byokKeys",
           (SELECT count(*)::int FROM cloud_api_tokens WHERE org_id = $1 AND 'gateway' = ANY(scopes) AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > now())) AS "liveGatewayTokens",
           (SELECT count(*)::int FROM cloud_channel_bindings WHERE org_id = $1 AND status <> 'disabled') AS "activeChannelBindings",
           (SELECT count(*)::int FROM cloud_channel_deliveries WHERE org_id = $1
              AND status IN ('pending', 'failed', 'claimed')) AS "openDeliveries"`,
        [orgId]
      )
      return rows[0]!
    })

  const exists = (orgId: string) =>
    Effect.map(sql.unsafe<{ id: string }>(`SELECT id FROM cloud_orgs WHERE id = $1`, [orgId]), (rows) => rows.length > 0)

  const activity = Effect.fn("Offboarding.activity")(function*(orgId: string) {
    if (!(yield* exists(orgId).pipe(Effect.orDie))) return yield* new NotFound({ message: `org ${orgId} not found` })
    return yield* activityOf(orgId).pipe(Effect.orDie)
  })

  /**
   * The `command.cancelled` events of the commands offboarding cancelled, in its transaction: per session (in id
   * order), in mailbox order, through the same unfenced append as an abort's (the session's sequence allocation
   * serializes it with its owner's writes). The projection rows are locked before the status check, in the order a
   * dead-letter takes them (command rows first), so a `queued` session left with nothing running is settled idle.
   */
  const appendCancelled = (rows: ReadonlyArray<{ id: string; kind: string; session_id: string; position: string }>) =>
    Effect.gen(function*() {
      if (rows.length === 0) return
      const sessionIds = [...new Set(rows.map((row) => row.session_id))].sort()
      const queued = new Set((yield* sql.unsafe<{ session_id: string }>(
        `SELECT p.session_id FROM cloud_session_projections p WHERE p.session_id = ANY($1::text[]) AND p.status = 'queued'
           AND NOT EXISTS (SELECT 1 FROM cloud_session_commands c WHERE c.session_id = p.session_id AND c.status = 'running')
         ORDER BY p.session_id FOR UPDATE OF p`,
        [sessionIds]
      )).map((row) => row.session_id))
      for (const sessionId of sessionIds) {
        const inMailboxOrder = rows.filter((row) => row.session_id === sessionId).sort((a, b) => Number(a.position) - Number(b.position))
        const commands = inMailboxOrder.map((row) => ({ commandId: row.id, kind: row.kind }))
        yield* appendEvents(sessionId, offboardingCancelEvents(commands, queued.has(sessionId)), undefined)
          .pipe(Effect.provideService(SqlClient.SqlClient, sql))
      }
    })

  const offboard = Effect.fn("Offboarding.offboard")(function*(orgId: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const org = yield* sql.unsafe<{ offboarded_at: Date }>(
        `UPDATE cloud_orgs SET offboarded_at = coalesce(offboarded_at, now()) WHERE id = $1 RETURNING offboarded_at`,
        [orgId]
      )
      if (org[0] === undefined) return yield* new NotFound({ message: `org ${orgId} not found` })
      const revokedTokens = yield* sql.unsafe<{ gateway: boolean }>(
        `UPDATE cloud_api_tokens SET revoked_at = now() WHERE org_id = $1 AND revoked_at IS NULL RETURNING 'gateway' = ANY(scopes) AS gateway`,
        [orgId]
      )
      const ended = nothingEnded()
      ended.apiTokens = revokedTokens.length
      ended.gatewayTokens = revokedTokens.filter((token) => token.gateway).length
      ended.channelBindings = count(yield* sql.unsafe(
        `UPDATE cloud_channel_bindings SET status = 'disabled', status_detail = $2, updated_at = now()
         WHERE org_id = $1 AND status <> 'disabled' RETURNING id`,
        [orgId, OFFBOARDED_DELIVERY_ERROR]
      ))
      // A gateway still holding a claim then gets ClaimLost on its ack: nothing of the org is sent after this commit.
      ended.deliveries = count(yield* sql.unsafe(
        `UPDATE cloud_channel_deliveries SET status = 'dead', claim_token = NULL, claim_expires_at = NULL, last_error = $2, updated_at = now()
         WHERE org_id = $1 AND status IN ('pending', 'failed', 'claimed') RETURNING id`,
        [orgId, OFFBOARDED_DELIVERY_ERROR]
      ))
      ended.browserSessions = count(yield* sql.unsafe(
        `UPDATE cloud_browser_sessions SET revoked_at = now() WHERE org_id = $1 AND revoked_at IS NULL
           AND idle_expires_at > now() AND absolute_expires_at > now() RETURNING id`,
        [orgId]
      ))
      yield* sql.unsafe(`UPDATE cloud_browser_sessions SET revoked_at = now() WHERE org_id = $1 AND revoked_at IS NULL`, [orgId])
      const cancelled = yield* sql.unsafe<{ id: string; kind: string; session_id: string; position: string }>(
        `UPDATE cloud_session_commands SET status = 'cancelled', completed_at = now() WHERE org_id = $1 AND status = 'pending'
         RETURNING id, kind, session_id, position`,
        [orgId]
      )
      ended.pendingCommands = cancelled.length
      yield* appendCancelled(cancelled)
      ended.sessions = count(yield* sql.unsafe(
        `UPDATE cloud_sessions SET aborted_at = now() WHERE org_id = $1 AND aborted_at IS NULL RETURNING id`,
        [orgId]
      ))
      ended.workflows = count(yield* sql.unsafe(
        `UPDATE cloud_workflows SET status = 'archived', next_run_at = NULL WHERE org_id = $1 AND status <> 'archived' RETURNING id`,
        [orgId]
      ))
      const orgWorkers = `SELECT w.id FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id WHERE p.org_id = $1`
      ended.workers = count(yield* sql.unsafe(
        `UPDATE cloud_workers SET status = 'revoked', updated_at = now()
         WHERE id IN (${orgWorkers}) AND status NOT IN ('retired', 'revoked') RETURNING id`,
        [orgId]
      ))
      ended.workerCredentials = count(yield* sql.unsafe(
        `UPDATE cloud_worker_credentials SET revoked_at = now() WHERE worker_id IN (${orgWorkers}) AND revoked_at IS NULL RETURNING id`,
        [orgId]
      ))
      ended.byokKeys = count(yield* sql.unsafe(`DELETE FROM cloud_byok_keys WHERE org_id = $1 RETURNING provider`, [orgId]))
      // At commit, every web process drops the org's cached tokens and ends its open streams.
      yield* notifyRevocations(sql, [{ kind: "org", id: orgId }])
      return offboardingReport(orgId, org[0].offboarded_at, ended, yield* activityOf(orgId))
    })).pipe(Effect.catchTag("SqlError", Effect.die))
  })

  return Offboarding.of({ offboard, activity })
})

export const layer = Layer.effect(Offboarding, make)
