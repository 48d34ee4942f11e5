import { type AuditDetails, type AuditEvent, decodeAuditCursor, encodeAuditCursor } from "@cowork/domain"
import { Audit, type AuditQuery, type AuditRecord } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

interface AuditRow {
  id: string
  org_id: string | null
  at: Date
  actor: string
  action: string
  target: string | null
  request_id: string | null
  details: AuditDetails
}

/** Audit over `cloud_audit_events` (append-only; a bigserial id orders it and is the keyset cursor). */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const record = Effect.fn("Audit.record")(function*(event: AuditRecord) {
    yield* sql.unsafe(
      `INSERT INTO cloud_audit_events (org_id, actor, action, target, request_id, details) VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
      [event.orgId, event.actor, event.action, event.target ?? null, event.requestId ?? null, JSON.stringify(event.details ?? {})]
    )
  }, Effect.orDie)

  const list = Effect.fn("Audit.list")(function*(orgId: string, query: AuditQuery) {
    const before = query.cursor === undefined ? null : decodeAuditCursor(query.cursor)
    if (query.cursor !== undefined && before === undefined) return { events: [], nextCursor: null }
    const rows = yield* sql.unsafe<AuditRow>(
      `SELECT id::text AS id, org_id, created_at AS at, actor, action, target, request_id, details FROM cloud_audit_events
       WHERE org_id = $1
         AND ($2::bigint IS NULL OR id < $2::bigint)
         AND ($3::text IS NULL OR actor = $3)
         AND ($4::text IS NULL OR action = $4)
         AND ($5::timestamptz IS NULL OR created_at >= $5::timestamptz)
         AND ($6::timestamptz IS NULL OR created_at < $6::timestamptz)
       ORDER BY id DESC LIMIT $7`,
      [orgId, before, query.actor ?? null, query.action ?? null, query.since ?? null, query.until ?? null, query.limit + 1]
    )
    const page = rows.slice(0, query.limit).map((row): AuditEvent => ({
      id: row.id,
      orgId: row.org_id ?? orgId,
      at: row.at.toISOString(),
      actor: row.actor,
      action: row.action,
      target: row.target,
      requestId: row.request_id,
      details: row.details
    }))
    return { events: page, nextCursor: rows.length > query.limit ? encodeAuditCursor(page[page.length - 1]!.id) : null }
  }, Effect.orDie)

  return Audit.of({ record, list })
})

export const layer = Layer.effect(Audit, make)
