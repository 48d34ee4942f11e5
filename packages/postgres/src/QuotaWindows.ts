import { type QuotaName, QUOTA_WINDOW_MS, type RateLimited } from "@cowork/domain"
import { quotaExceeded } from "@cowork/services"
import { Effect } from "effect"
import type { SqlClient, SqlError } from "effect/sql"

/** How long a finished window row is kept (usage reads look back a day; older rows only cost space). */
const KEEP_ENDED_WINDOWS = "1 day"

/** Deletes the org's quota windows that ended more than a day ago. */
export const pruneQuotaWindows = (sql: SqlClient.SqlClient, orgId: string) =>
  sql.unsafe(
    `DELETE FROM cloud_quota_windows WHERE org_id = $1 AND window_start < now() - interval '1 day' - interval '${KEEP_ENDED_WINDOWS}'`,
    [orgId]
  ).pipe(Effect.asVoid)

/**
 * Counts `amount` in the org's current fixed window of `quota` (clock-aligned, `QUOTA_WINDOW_MS`) only while the total
 * stays within `limit`; else `RateLimited` with the wait until the window ends. Run it inside the admitting
 * transaction: a refusal then leaves nothing behind, and concurrent admissions of one org serialize on the row.
 */
export const admitInWindow = (
  sql: SqlClient.SqlClient,
  orgId: string,
  quota: QuotaName,
  amount: number,
  limit: number
): Effect.Effect<void, RateLimited | SqlError.SqlError> =>
  Effect.gen(function*() {
    const windowMs = QUOTA_WINDOW_MS[quota] ?? 3_600_000
    const window = `to_timestamp(floor(extract(epoch FROM now()) * 1000 / $4::float8) * $4::float8 / 1000)`
    const counted = yield* sql.unsafe<{ used: number | string }>(
      `INSERT INTO cloud_quota_windows (org_id, quota, window_start, used)
       SELECT $1, $2, ${window}, $3::bigint WHERE $3::bigint <= $5::bigint
       ON CONFLICT (org_id, quota, window_start) DO UPDATE SET used = cloud_quota_windows.used + EXCLUDED.used
         WHERE cloud_quota_windows.used + EXCLUDED.used <= $5::bigint
       RETURNING used`,
      [orgId, quota, amount, windowMs, limit]
    )
    if (counted.length === 0) {
      const rows = yield* sql.unsafe<{ ms: number }>(
        `SELECT (extract(epoch FROM to_timestamp(floor(extract(epoch FROM now()) * 1000 / $1::float8) * $1::float8 / 1000) - now())
           * 1000 + $1::float8)::float8 AS ms`,
        [windowMs]
      )
      return yield* quotaExceeded(quota, limit, Number(rows[0]?.ms ?? windowMs))
    }
    if (Number(counted[0]!.used) === amount) yield* pruneQuotaWindows(sql, orgId)
  })

/**
 * What the org has used of `quota` in its current window, read without a lock: an optimistic admission plans with it,
 * then confirms with `admitInWindow` as its transaction's last write (so the window row is locked only until commit).
 */
export const usedInWindow = (sql: SqlClient.SqlClient, orgId: string, quota: QuotaName): Effect.Effect<number, SqlError.SqlError> =>
  Effect.map(
    sql.unsafe<{ used: number | string }>(
      `SELECT used FROM cloud_quota_windows
       WHERE org_id = $1 AND quota = $2 AND window_start = to_timestamp(floor(extract(epoch FROM now()) * 1000 / $3::float8) * $3::float8 / 1000)`,
      [orgId, quota, QUOTA_WINDOW_MS[quota] ?? 3_600_000]
    ),
    (rows) => Number(rows[0]?.used ?? 0)
  )
