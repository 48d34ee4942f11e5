import {
  type ChannelDelivery,
  ClaimLost,
  Conflict,
  decodeSessionCursor,
  type DeliveryStatus,
  DeliveryStatus as DeliveryStatusSchema,
  encodeSessionCursor,
  Forbidden,
  NotFound
} from "@cowork/domain"
import {
  DeliveryFeed,
  type DeliveryFeedOptions,
  type DeliveryScope,
  defaultDeliveryFeedOptions,
  deliveryBackoffMs,
  MAX_DELIVERY_ERROR_LENGTH
} from "@cowork/services"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Random, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { DELIVERIES_CHANNEL, parseDeliveryNotice } from "./Channels.ts"
import { countEstimate } from "./CountEstimate.ts"
import * as ListenConnection from "./ListenConnection.ts"
import { ListenHub } from "./ListenConnection.ts"

interface DeliveryRow {
  readonly id: string
  readonly org_id: string
  readonly channel_binding_id: string
  readonly provider_kind: ChannelDelivery["providerKind"]
  readonly provider_id: string
  readonly external_target: string
  readonly external_thread_id: string | null
  readonly session_id: string
  readonly event_id: string
  readonly event_sequence: string | number
  readonly event_type: ChannelDelivery["eventType"]
  readonly kind: ChannelDelivery["kind"]
  readonly payload: unknown
  readonly status: DeliveryStatus
  readonly attempts: number
  readonly max_attempts: number
  readonly next_attempt_at: Date
  readonly claim_expires_at: Date | null
  readonly claim_token: string | null
  readonly last_claimed_by: string | null
  readonly last_claimed_replica: string | null
  readonly last_error: string | null
  readonly idempotency_key: string
  readonly provider_message_id: string | null
  readonly created_at: Date
  readonly updated_at: Date
  readonly sent_at: Date | null
  /** Computed by the database clock where a fence is judged. */
  readonly expired?: boolean
}

const iso = (value: Date | null) => (value === null ? null : new Date(value).toISOString())

const view = (row: DeliveryRow): ChannelDelivery => ({
  id: row.id,
  channelBindingId: row.channel_binding_id,
  providerKind: row.provider_kind,
  providerId: row.provider_id,
  externalTarget: row.external_target,
  externalThreadId: row.external_thread_id,
  sessionId: row.session_id,
  eventId: row.event_id,
  eventSequence: Number(row.event_sequence),
  eventType: row.event_type,
  kind: row.kind,
  payload: row.payload,
  status: row.status,
  attempts: Number(row.attempts),
  maxAttempts: Number(row.max_attempts),
  nextAttemptAt: row.status === "pending" || row.status === "failed" ? iso(row.next_attempt_at) : null,
  claimExpiresAt: row.status === "claimed" ? iso(row.claim_expires_at) : null,
  lastClaimedBy: row.last_claimed_by,
  lastClaimedReplica: row.last_claimed_replica,
  lastError: row.last_error,
  idempotencyKey: row.idempotency_key,
  providerMessageId: row.provider_message_id,
  createdAt: iso(row.created_at)!,
  updatedAt: iso(row.updated_at)!,
  sentAt: iso(row.sent_at)
})

/** Columns of a delivery with its binding's provider and target, for `SELECT … FROM cloud_channel_deliveries d`. */
const COLUMNS = `d.*, b.provider_kind, b.provider_id, b.external_target`

/** `$1` the org, `$2` the bindings (`NULL`: every binding of the org). */
const SCOPE = `d.org_id = $1 AND ($2::text[] IS NULL OR d.channel_binding_id = ANY($2::text[]))`

/** The claim of the rows in `due` (`$4` max attempts, `$5` TTL ms, `$6` claimer, `$7` replica): one attempt each. */
const CLAIM_DUE = `UPDATE cloud_channel_deliveries d SET status = 'claimed', attempts = d.attempts + 1, max_attempts = $4,
    claim_token = gen_random_uuid()::text, claim_expires_at = now() + $5::float8 * interval '1 millisecond',
    last_claimed_by = $6, last_claimed_replica = $7, updated_at = now()
  FROM due WHERE d.id = due.id
  RETURNING d.*`

/** The start of the current clock hour (the fixed windows of `cloud_quota_windows`, as `admitInWindow` computes them). */
const HOUR_WINDOW = `to_timestamp(floor(extract(epoch FROM now()) / 3600) * 3600)`

const scopeParams = (scope: DeliveryScope) => [scope.orgId, scope.bindingIds === undefined ? null : [...scope.bindingIds]]

export const make = (options: DeliveryFeedOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pg = yield* PgClient.PgClient
    const listener = yield* ListenHub

    const select = (scope: DeliveryScope, deliveryId: string) =>
      sql.unsafe<DeliveryRow>(
        `SELECT ${COLUMNS}, (d.claim_expires_at IS NULL OR d.claim_expires_at <= now()) AS expired
         FROM cloud_channel_deliveries d JOIN cloud_channel_bindings b ON b.id = d.channel_binding_id
         WHERE ${SCOPE} AND d.id = $3`,
        [...scopeParams(scope), deliveryId]
      ).pipe(Effect.orDie, Effect.map((rows) => rows[0]))

    const found = (scope: DeliveryScope, deliveryId: string) =>
      Effect.flatMap(select(scope, deliveryId), (row) =>
        row === undefined ? Effect.fail(new NotFound({ message: "delivery not found" })) : Effect.succeed(row))

    /** Why a fenced write matched nothing: not in scope (404), or the claim is gone (409, with the reason). */
    const refusal = (scope: DeliveryScope, deliveryId: string, claimToken: string) =>
      Effect.flatMap(found(scope, deliveryId), (row) =>
        Effect.fail(
          new ClaimLost({
            kind: "delivery",
            id: deliveryId,
            reason: row.status !== "claimed" || row.claim_token === null
              ? "not_claimed"
              : row.claim_token !== claimToken
              ? "reclaimed"
              : "expired"
          })
        ))

    /** Runs a fenced UPDATE (`$3` id, `$4` claim token) returning the row, or explains the refusal. */
    const fenced = (scope: DeliveryScope, deliveryId: string, claimToken: string, set: string, extra: ReadonlyArray<unknown>) =>
      Effect.gen(function*() {
        const rows = yield* sql.unsafe<DeliveryRow>(
          `WITH u AS (
             UPDATE cloud_channel_deliveries d SET ${set}, updated_at = now()
             WHERE ${SCOPE} AND d.id = $3 AND d.status = 'claimed' AND d.claim_token = $4 AND d.claim_expires_at > now()
             RETURNING d.*
           )
           SELECT u.*, b.provider_kind, b.provider_id, b.external_target FROM u JOIN cloud_channel_bindings b ON b.id = u.channel_binding_id`,
          [...scopeParams(scope), deliveryId, claimToken, ...extra]
        ).pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return yield* refusal(scope, deliveryId, claimToken)
        return view(row)
      })

    const notify = (orgId: string, bindingId: string) =>
      pg.notify(DELIVERIES_CHANNEL, `${orgId} ${bindingId}`).pipe(Effect.orDie)

    const reap = Effect.fn("DeliveryFeed.reap")(function*() {
      const rows = yield* sql.unsafe<{ status: string; org_id: string; channel_binding_id: string }>(
        `WITH expired AS (
           SELECT id FROM cloud_channel_deliveries
           WHERE status = 'claimed' AND claim_expires_at <= now()
           ORDER BY claim_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
         )
         UPDATE cloud_channel_deliveries d SET
           status = CASE WHEN d.attempts >= d.max_attempts THEN 'dead' ELSE 'pending' END,
           claim_token = NULL, claim_expires_at = NULL, next_attempt_at = now(), updated_at = now(),
           last_error = COALESCE(d.last_error, 'claim expired before an ack')
         FROM expired WHERE d.id = expired.id
         RETURNING d.status, d.org_id, d.channel_binding_id`,
        [options.reapLimit]
      ).pipe(Effect.orDie)
      const dead = rows.filter((row) => row.status === "dead").length
      const woken = new Set(rows.filter((row) => row.status === "pending").map((row) => `${row.org_id} ${row.channel_binding_id}`))
      for (const key of woken) {
        const [orgId, bindingId] = key.split(" ")
        yield* notify(orgId!, bindingId!)
      }
      return { returned: rows.length - dead, dead, capped: rows.length >= options.reapLimit }
    })

    return DeliveryFeed.of({
      claim: Effect.fn("DeliveryFeed.claim")(function*(scope, input) {
        if (input.deliveriesPerHour === undefined) {
          const rows = yield* sql.unsafe<DeliveryRow>(
            `WITH due AS (
               SELECT d.id FROM cloud_channel_deliveries d JOIN cloud_channel_bindings b ON b.id = d.channel_binding_id
               WHERE ${SCOPE} AND b.status = 'active' AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= now()
               ORDER BY d.next_attempt_at, d.id LIMIT $3
               FOR UPDATE OF d SKIP LOCKED
             ),
             claimed AS (${CLAIM_DUE})
             SELECT d.*, b.provider_kind, b.provider_id, b.external_target
             FROM claimed d JOIN cloud_channel_bindings b ON b.id = d.channel_binding_id
             ORDER BY d.next_attempt_at, d.id`,
            [...scopeParams(scope), input.limit, options.maxAttempts, input.ttlMs, input.claimedBy, input.replica ?? null]
          ).pipe(Effect.orDie)
          return { deliveries: rows.map((row) => ({ ...view(row), claimToken: row.claim_token! })), deferredByQuota: 0 }
        }
        // One statement: the due rows; the org's window row for this clock hour, locked (only when a first attempt is
        // due, so an idle poll writes nothing); first attempts admitted in order while the window has room, the rest
        // deferred to the window's end; the admitted first attempts added to the window.
        const rows = yield* sql.unsafe<DeliveryRow & { readonly deferred: number | string; readonly id: string | null }>(
          `WITH due AS (
             SELECT d.id, d.attempts, d.next_attempt_at FROM cloud_channel_deliveries d
               JOIN cloud_channel_bindings b ON b.id = d.channel_binding_id
             WHERE ${SCOPE} AND b.status = 'active' AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= now()
             ORDER BY d.next_attempt_at, d.id LIMIT $3
             FOR UPDATE OF d SKIP LOCKED
           ),
           window_row AS (
             SELECT used FROM cloud_quota_windows
             WHERE org_id = $1 AND quota = 'channel_deliveries_per_hour' AND window_start = ${HOUR_WINDOW}
               AND EXISTS (SELECT 1 FROM due WHERE due.attempts = 0)
             FOR UPDATE
           ),
           ranked AS (
             SELECT id, attempts, count(*) FILTER (WHERE attempts = 0) OVER (ORDER BY next_attempt_at, id) AS first_rank FROM due
           ),
           admitted AS (
             SELECT id FROM ranked WHERE attempts > 0 OR first_rank <= $8::bigint - COALESCE((SELECT used FROM window_row), 0)
           ),
           deferred AS (
             UPDATE cloud_channel_deliveries d SET next_attempt_at = ${HOUR_WINDOW} + interval '1 hour', updated_at = now()
             FROM ranked WHERE d.id = ranked.id AND ranked.id NOT IN (SELECT id FROM admitted)
             RETURNING d.id
           ),
           claimed AS (${CLAIM_DUE.replace("FROM due WHERE d.id = due.id", "FROM admitted WHERE d.id = admitted.id")}),
           counted AS (
             INSERT INTO cloud_quota_windows (org_id, quota, window_start, used)
             SELECT $1, 'channel_deliveries_per_hour', ${HOUR_WINDOW}, count(*) FROM claimed WHERE claimed.attempts = 1
             HAVING count(*) > 0
             ON CONFLICT (org_id, quota, window_start) DO UPDATE SET used = cloud_quota_windows.used + EXCLUDED.used
             RETURNING 1
           )
           SELECT d.*, b.provider_kind, b.provider_id, b.external_target,
             (SELECT count(*) FROM deferred) AS deferred, (SELECT count(*) FROM counted) AS counted
           FROM (SELECT 1) one
             LEFT JOIN (claimed d JOIN cloud_channel_bindings b ON b.id = d.channel_binding_id) ON true
           ORDER BY d.next_attempt_at, d.id`,
          [...scopeParams(scope), input.limit, options.maxAttempts, input.ttlMs, input.claimedBy, input.replica ?? null, input.deliveriesPerHour]
        ).pipe(Effect.orDie)
        return {
          deliveries: rows.filter((row) => row.id !== null).map((row) => ({ ...view(row), claimToken: row.claim_token! })),
          deferredByQuota: Number(rows[0]?.deferred ?? 0)
        }
      }),
      renew: (scope, deliveryId, claimToken, ttlMs) =>
        fenced(scope, deliveryId, claimToken, `claim_expires_at = now() + $5::float8 * interval '1 millisecond'`, [ttlMs]).pipe(
          Effect.withSpan("DeliveryFeed.renew")
        ),
      ack: (scope, deliveryId, input) =>
        Effect.gen(function*() {
          const jitter = yield* Random.next
          const error = input.error?.slice(0, MAX_DELIVERY_ERROR_LENGTH) ?? null
          // The delay for the attempt count after this claim (the row's `attempts`), chosen here; the cap by the row.
          const current = yield* select(scope, deliveryId)
          const delayMs = deliveryBackoffMs(options, current?.attempts ?? 1, jitter, input.retryAfterMs)
          return yield* fenced(
            scope,
            deliveryId,
            input.claimToken,
            `status = CASE WHEN $5 = 'sent' THEN 'sent' WHEN $5 = 'dead' OR d.attempts >= d.max_attempts THEN 'dead' ELSE 'failed' END,
             sent_at = CASE WHEN $5 = 'sent' THEN now() ELSE d.sent_at END,
             next_attempt_at = CASE WHEN $5 = 'failed' THEN now() + $6::float8 * interval '1 millisecond' ELSE d.next_attempt_at END,
             last_error = COALESCE($7, d.last_error), provider_message_id = COALESCE($8, d.provider_message_id),
             claim_token = NULL, claim_expires_at = NULL`,
            [input.outcome, delayMs, error, input.providerMessageId ?? null]
          )
        }).pipe(Effect.withSpan("DeliveryFeed.ack")),
      retry: Effect.fn("DeliveryFeed.retry")(function*(scope, deliveryId, lastClaimedBy) {
        const row = yield* found(scope, deliveryId)
        if (lastClaimedBy !== undefined && row.last_claimed_by !== lastClaimedBy) {
          return yield* new Forbidden({ message: "this gateway token did not claim this delivery last" })
        }
        const rows = yield* sql.unsafe<DeliveryRow>(
          `UPDATE cloud_channel_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
           FROM cloud_channel_bindings b
           WHERE b.id = d.channel_binding_id AND ${SCOPE} AND d.id = $3 AND d.status IN ('failed', 'dead')
           RETURNING ${COLUMNS}`,
          [...scopeParams(scope), deliveryId]
        ).pipe(Effect.orDie)
        const updated = rows[0]
        if (updated === undefined) {
          return yield* new Conflict({ message: `a ${row.status} delivery cannot be retried`, details: { status: row.status } })
        }
        yield* notify(updated.org_id, updated.channel_binding_id)
        return view(updated)
      }),
      deadLetter: Effect.fn("DeliveryFeed.deadLetter")(function*(scope, deliveryId, reason, lastClaimedBy) {
        const row = yield* found(scope, deliveryId)
        if (lastClaimedBy !== undefined && row.last_claimed_by !== lastClaimedBy) {
          return yield* new Forbidden({ message: "this gateway token did not claim this delivery last" })
        }
        const rows = yield* sql.unsafe<DeliveryRow>(
          `UPDATE cloud_channel_deliveries d SET status = 'dead', claim_token = NULL, claim_expires_at = NULL,
             last_error = COALESCE($4, d.last_error), updated_at = now()
           FROM cloud_channel_bindings b
           WHERE b.id = d.channel_binding_id AND ${SCOPE} AND d.id = $3 AND d.status IN ('pending', 'failed', 'claimed')
           RETURNING ${COLUMNS}`,
          [...scopeParams(scope), deliveryId, reason?.slice(0, MAX_DELIVERY_ERROR_LENGTH) ?? null]
        ).pipe(Effect.orDie)
        const updated = rows[0]
        if (updated === undefined) {
          return yield* new Conflict({ message: `a ${row.status} delivery cannot be dead-lettered`, details: { status: row.status } })
        }
        return view(updated)
      }),
      get: (scope, deliveryId) => Effect.map(found(scope, deliveryId), view),
      list: Effect.fn("DeliveryFeed.list")(function*(scope, query) {
        const afterId = query.cursor === undefined ? null : decodeSessionCursor(query.cursor) ?? null
        const filters = `${SCOPE} AND ($3::text IS NULL OR d.status = $3) AND ($4::text IS NULL OR d.channel_binding_id = $4)`
        const rows = yield* sql.unsafe<DeliveryRow>(
          `SELECT ${COLUMNS} FROM cloud_channel_deliveries d JOIN cloud_channel_bindings b ON b.id = d.channel_binding_id
           WHERE ${filters}
             AND ($5::text IS NULL OR (d.created_at, d.id) < (SELECT c.created_at, c.id FROM cloud_channel_deliveries c WHERE c.id = $5))
           ORDER BY d.created_at DESC, d.id DESC LIMIT $6`,
          [...scopeParams(scope), query.status ?? null, query.channelBindingId ?? null, afterId, query.limit + 1]
        ).pipe(Effect.orDie)
        // The total as the session lists count theirs: exact up to EXACT_COUNT_LIMIT, the planner's estimate beyond.
        // Only the filters given, as literal conditions, so the estimate is the plan of this query, not a generic one.
        const countParams: Array<unknown> = [scope.orgId]
        const param = (value: unknown) => `$${countParams.push(value)}`
        const where = [
          "d.org_id = $1",
          ...(scope.bindingIds === undefined ? [] : [`d.channel_binding_id = ANY(${param([...scope.bindingIds])}::text[])`]),
          ...(query.status === undefined ? [] : [`d.status = ${param(query.status)}`]),
          ...(query.channelBindingId === undefined ? [] : [`d.channel_binding_id = ${param(query.channelBindingId)}`])
        ].join(" AND ")
        const totalEstimate = yield* countEstimate(sql, "cloud_channel_deliveries d", where, countParams).pipe(Effect.orDie)
        const page = rows.slice(0, query.limit)
        return {
          deliveries: page.map(view),
          nextCursor: rows.length > query.limit ? encodeSessionCursor(page[page.length - 1]!.id) : null,
          totalEstimate
        }
      }),
      reap: reap(),
      // On the process's one listening connection (shared with the change feed); returned once the channel's LISTEN
      // is active (or its first attempt failed; 3 s at most): a delivery made after a gateway's stream opened wakes it
      // (the stream's opening frame, sent after this, covers what was waiting before).
      notices: Effect.map(listener.subscribe(DELIVERIES_CHANNEL), Stream.filterMap((payload: string) => {
        const notice = parseDeliveryNotice(payload)
        return notice === undefined ? Result.failVoid : Result.succeed(notice)
      })),
      countsByStatus: (orgId) => Effect.gen(function*() {
        const rows = yield* sql.unsafe<{ status: DeliveryStatus; n: number }>(
          `SELECT status, count(*)::int AS n FROM cloud_channel_deliveries WHERE ($1::text IS NULL OR org_id = $1) GROUP BY status`,
          [orgId ?? null]
        ).pipe(Effect.orDie)
        const counts = Object.fromEntries(DeliveryStatusSchema.literals.map((status) => [status, 0])) as Record<DeliveryStatus, number>
        for (const row of rows) counts[row.status] = Number(row.n)
        return counts
      })
    })
  })

/** `OPEN_COWORK_CLOUD_CHANNEL_DELIVERY_MAX_ATTEMPTS` (default 8): the server's attempt cap. */
export const layerConfig = Layer.effect(
  DeliveryFeed,
  Effect.gen(function*() {
    const maxAttempts = yield* Config.Int("OPEN_COWORK_CLOUD_CHANNEL_DELIVERY_MAX_ATTEMPTS").pipe(
      Config.withDefault(defaultDeliveryFeedOptions.maxAttempts)
    )
    return yield* make({ ...defaultDeliveryFeedOptions, maxAttempts })
  })
).pipe(Layer.provide(ListenConnection.layer))

export const layer = Layer.effect(DeliveryFeed, make(defaultDeliveryFeedOptions)).pipe(Layer.provide(ListenConnection.layer))
export const layerWith = (options: DeliveryFeedOptions) =>
  Layer.effect(DeliveryFeed, make(options)).pipe(Layer.provide(ListenConnection.layer))
