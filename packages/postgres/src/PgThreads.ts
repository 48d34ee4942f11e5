import { normalizeTags, NotFound, RECENT_WINDOW_MS, type SessionStatus, type SmartFilterId, type Thread } from "@cowork/domain"
import { MAX_TAG_LIST, SMART_FILTERS, Threads, type ThreadsQuery } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { sessionsPage } from "./SessionsPage.ts"

interface ThreadRow {
  readonly id: string
  readonly title: string
  readonly status: string
  readonly profile_name: string
  readonly tags: ReadonlyArray<string>
  readonly created_by: string | null
  readonly last_sequence: number | bigint
  readonly created_at: Date
  readonly updated_at: Date
}

const COLUMNS = `s.id, s.title, p.status, s.profile_name, s.tags, s.created_by, p.last_sequence, s.created_at, p.updated_at`

const toThread = (row: ThreadRow): Thread => ({
  id: row.id,
  title: row.title,
  status: row.status as SessionStatus,
  profileName: row.profile_name,
  tags: [...row.tags],
  createdBy: row.created_by,
  lastSequence: Number(row.last_sequence),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

/** `param` for a smart filter: it binds "viewer" as the viewer's id and "recent" as the recent window. */
const viewerParam = (param: (value: unknown) => string, viewer: string) => (value: "viewer" | "recent") =>
  param(value === "viewer" ? viewer : RECENT_WINDOW_MS)

/** The SQL condition of a smart filter over `s` / `p`; `viewer` and the recent window are parameters. */
const filterSql = (filter: SmartFilterId, param: (value: "viewer" | "recent") => string): string => {
  switch (filter) {
    case "running":
      return `p.status = 'running'`
    case "failed":
      return `EXISTS (SELECT 1 FROM cloud_session_commands c WHERE c.session_id = s.id AND c.kind = 'prompt' AND c.status IN ('failed', 'dead'))`
    case "mine":
      return `s.created_by = ${param("viewer")}`
    case "recent":
      return `p.updated_at >= now() - ${param("recent")}::float8 * interval '1 millisecond'`
  }
}

/**
 * The one table a smart filter's condition reads (`s` sessions or `p` projections, a session's 1:1 row with the same
 * org), so its count is a statement over that table alone: no join of every session of the org to its projection.
 */
const FILTER_TABLE: Record<SmartFilterId, "s" | "p"> = { running: "p", failed: "s", mine: "s", recent: "p" }
const FILTER_FROM = { s: "cloud_sessions s", p: "cloud_session_projections p" } as const

/** The thread views over Postgres; every statement is scoped to the caller's org. */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const list = Effect.fn("Threads.list")(function*(orgId: string, viewer: string, query: ThreadsQuery) {
    const { rows, nextCursor, totalEstimate } = yield* sessionsPage<ThreadRow>(sql, orgId, COLUMNS, query, (param) => [
      ...(query.filter === undefined ? [] : [filterSql(query.filter, viewerParam(param, viewer))]),
      ...(query.tag === undefined ? [] : [`s.tags @> ARRAY[${param(query.tag)}]::text[]`])
    ])
    return { threads: rows.map(toThread), nextCursor, totalEstimate }
  }, Effect.orDie)

  // Only the tagged sessions (migration 13's partial index): an untagged session adds nothing to the counts.
  const tags = Effect.fn("Threads.tags")(function*(orgId: string) {
    const rows = yield* sql.unsafe<{ tag: string; count: number }>(
      `SELECT tag, count(*)::int AS count FROM cloud_sessions s, unnest(s.tags) AS tag
       WHERE s.org_id = $1 AND s.tags <> '{}' GROUP BY tag ORDER BY count(*) DESC, tag LIMIT $2`,
      [orgId, MAX_TAG_LIST]
    )
    return rows.map((row) => ({ tag: row.tag, count: Number(row.count) }))
  }, Effect.orDie)

  // The projections' filters (running, recent) in one pass over the org's projections; each sessions' filter (mine,
  // failed) as a condition of its own, so the planner reaches its matches through an index (migration 14) instead of
  // testing every session of the org.
  const smartFilters = Effect.fn("Threads.smartFilters")(function*(orgId: string, viewer: string) {
    const countOver = (table: "s" | "p", filters: ReadonlyArray<SmartFilterId>, filtered: boolean) => {
      const params: Array<unknown> = [orgId]
      const param = viewerParam((value) => {
        params.push(value)
        return `$${params.length}`
      }, viewer)
      const counts = filters.map((id) => filtered ? `count(*)::int AS "${id}"` : `count(*) FILTER (WHERE ${filterSql(id, param)})::int AS "${id}"`)
      const where = filtered ? ` AND ${filterSql(filters[0]!, param)}` : ""
      return sql.unsafe<Record<string, number>>(`SELECT ${counts.join(", ")} FROM ${FILTER_FROM[table]} WHERE ${table}.org_id = $1${where}`, params)
    }
    const onProjections = SMART_FILTERS.filter((filter) => FILTER_TABLE[filter.id] === "p").map((filter) => filter.id)
    const onSessions = SMART_FILTERS.filter((filter) => FILTER_TABLE[filter.id] === "s").map((filter) => filter.id)
    const rows = [
      ...(yield* countOver("p", onProjections, false)),
      ...(yield* Effect.forEach(onSessions, (id) => countOver("s", [id], true))).flat()
    ]
    const counts = Object.assign({}, ...rows) as Record<string, number>
    return SMART_FILTERS.map((filter) => ({ ...filter, count: Number(counts[filter.id] ?? 0) }))
  }, Effect.orDie)

  const update = Effect.fn("Threads.update")(function*(
    orgId: string,
    sessionId: string,
    input: { readonly title?: string | undefined; readonly tags?: ReadonlyArray<string> | undefined }
  ) {
    const rows = yield* sql.unsafe<ThreadRow>(
      `WITH changed AS (
         UPDATE cloud_sessions SET title = coalesce($3, title), tags = coalesce($4::text[], tags)
         WHERE id = $1 AND org_id = $2 RETURNING *
       )
       SELECT ${COLUMNS} FROM changed s JOIN cloud_session_projections p ON p.session_id = s.id`,
      [sessionId, orgId, input.title ?? null, input.tags === undefined ? null : normalizeTags(input.tags)]
    ).pipe(Effect.orDie)
    if (rows[0] === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
    return toThread(rows[0])
  })

  return Threads.of({ list, tags, smartFilters, update })
})

export const layer = Layer.effect(Threads, make)
