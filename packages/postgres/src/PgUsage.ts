import { decodeUsageCursor, encodeUsageCursor, type UsageEvent } from "@cowork/domain"
import { Usage, type UsageWindow } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/** Usage from `cloud_session_commands`, `cloud_sessions` and `cloud_artifacts` (read-only). */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const summary = Effect.fn("Usage.summary")(function*(orgId: string, window: UsageWindow) {
    const rows = yield* sql.unsafe<{ prompts: number; sessions: number; uploads: number; bytes: string | number | null }>(
      `SELECT
         (SELECT count(*)::int FROM cloud_session_commands
            WHERE org_id = $1 AND kind = 'prompt' AND created_at >= $2::timestamptz AND created_at < $3::timestamptz) AS prompts,
         (SELECT count(*)::int FROM cloud_sessions
            WHERE org_id = $1 AND created_at >= $2::timestamptz AND created_at < $3::timestamptz) AS sessions,
         (SELECT count(*)::int FROM cloud_artifacts
            WHERE org_id = $1 AND created_at >= $2::timestamptz AND created_at < $3::timestamptz) AS uploads,
         (SELECT coalesce(sum(size_bytes), 0)::bigint FROM cloud_artifacts
            WHERE org_id = $1 AND created_at >= $2::timestamptz AND created_at < $3::timestamptz) AS bytes`,
      [orgId, window.since, window.until]
    )
    const row = rows[0]!
    return {
      orgId,
      since: new Date(window.since).toISOString(),
      until: new Date(window.until).toISOString(),
      prompts: row.prompts,
      sessionsCreated: row.sessions,
      artifactUploads: row.uploads,
      artifactBytes: Number(row.bytes ?? 0),
      runtimeSeconds: null,
      modelTokens: null
    }
  }, Effect.orDie)

  const events = Effect.fn("Usage.events")(function*(orgId: string, page: { readonly limit: number; readonly cursor?: string | undefined }) {
    const after = page.cursor === undefined ? undefined : decodeUsageCursor(page.cursor)
    if (page.cursor !== undefined && after === undefined) return { events: [], nextCursor: null }
    const rows = yield* sql.unsafe<{ id: string; kind: "prompt" | "artifact"; session_id: string; at: Date; quantity: string | number }>(
      `SELECT * FROM (
         SELECT id, 'prompt' AS kind, session_id, date_trunc('milliseconds', created_at) AS at, 1::bigint AS quantity
           FROM cloud_session_commands WHERE org_id = $1 AND kind = 'prompt'
         UNION ALL
         SELECT id, 'artifact' AS kind, session_id, date_trunc('milliseconds', created_at) AS at, size_bytes AS quantity
           FROM cloud_artifacts WHERE org_id = $1
       ) u
       WHERE $2::timestamptz IS NULL OR (u.at, u.id) < ($2::timestamptz, $3::text)
       ORDER BY u.at DESC, u.id DESC LIMIT $4`,
      [orgId, after?.[0] ?? null, after?.[1] ?? null, page.limit + 1]
    )
    const list = rows.slice(0, page.limit).map((row): UsageEvent => ({
      id: row.id,
      kind: row.kind,
      sessionId: row.session_id,
      at: row.at.toISOString(),
      quantity: Number(row.quantity),
      unit: row.kind === "prompt" ? "prompts" : "bytes"
    }))
    const last = list[list.length - 1]
    return { events: list, nextCursor: rows.length > page.limit && last !== undefined ? encodeUsageCursor(last.at, last.id) : null }
  }, Effect.orDie)

  return Usage.of({ summary, events })
})

export const layer = Layer.effect(Usage, make)
