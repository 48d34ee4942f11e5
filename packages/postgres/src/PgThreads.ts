import { decodeSessionCursor, encodeSessionCursor, normalizeTags, NotFound, RECENT_WINDOW_MS, type SessionStatus, type SmartFilterId, type Thread } from "@cowork/domain"
import { MAX_TAG_LIST, SMART_FILTERS, Threads, type ThreadsQuery } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

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
const FROM = `cloud_sessions s JOIN cloud_session_projections p ON p.session_id = s.id`

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

const escapeLike = (value: string): string => value.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The SQL condition of a smart filter over `s` / `p`; `viewer` and the recent window are parameters. */
const filterSql = (filter: SmartFilterId, param: (value: unknown) => string): string => {
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

/** The thread views over Postgres; every statement is scoped to the caller's org. */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const list = Effect.fn("Threads.list")(function*(orgId: string, viewer: string, query: ThreadsQuery) {
    const params: Array<unknown> = [orgId]
    const param = (value: unknown) => {
      params.push(value === "viewer" ? viewer : value === "recent" ? RECENT_WINDOW_MS : value)
      return `$${params.length}`
    }
    const filters: Array<string> = ["s.org_id = $1"]
    if (query.filter !== undefined) filters.push(filterSql(query.filter, param))
    if (query.tag !== undefined) filters.push(`s.tags @> ARRAY[${param(query.tag)}]::text[]`)
    if (query.q !== undefined && query.q !== "") filters.push(`s.title ILIKE ${param(`%${escapeLike(query.q)}%`)}`)
    const where = filters.join(" AND ")
    const count = yield* sql.unsafe<{ n: number | bigint }>(`SELECT count(*) AS n FROM ${FROM} WHERE ${where}`, [...params])
    const cursorId = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor)
    const keyset = cursorId === undefined
      ? ""
      : ` AND (s.created_at, s.id) < (SELECT c.created_at, c.id FROM cloud_sessions c WHERE c.id = ${param(cursorId)} AND c.org_id = $1)`
    const rows = yield* sql.unsafe<ThreadRow>(
      `SELECT ${COLUMNS} FROM ${FROM} WHERE ${where}${keyset} ORDER BY s.created_at DESC, s.id DESC LIMIT ${param(query.limit + 1)}`,
      params
    )
    const page = rows.slice(0, query.limit)
    const last = page[page.length - 1]
    return {
      threads: page.map(toThread),
      nextCursor: rows.length > query.limit && last !== undefined ? encodeSessionCursor(last.id) : null,
      totalEstimate: Number(count[0]?.n ?? 0)
    }
  }, Effect.orDie)

  const tags = Effect.fn("Threads.tags")(function*(orgId: string) {
    const rows = yield* sql.unsafe<{ tag: string; count: number }>(
      `SELECT tag, count(*)::int AS count FROM cloud_sessions s, unnest(s.tags) AS tag
       WHERE s.org_id = $1 GROUP BY tag ORDER BY count(*) DESC, tag LIMIT $2`,
      [orgId, MAX_TAG_LIST]
    )
    return rows.map((row) => ({ tag: row.tag, count: Number(row.count) }))
  }, Effect.orDie)

  const smartFilters = Effect.fn("Threads.smartFilters")(function*(orgId: string, viewer: string) {
    const params: Array<unknown> = [orgId]
    const param = (value: unknown) => {
      params.push(value === "viewer" ? viewer : value === "recent" ? RECENT_WINDOW_MS : value)
      return `$${params.length}`
    }
    const counts = SMART_FILTERS.map((filter) => `count(*) FILTER (WHERE ${filterSql(filter.id, param)})::int AS "${filter.id}"`)
    const rows = yield* sql.unsafe<Record<string, number>>(`SELECT ${counts.join(", ")} FROM ${FROM} WHERE s.org_id = $1`, params)
    return SMART_FILTERS.map((filter) => ({ ...filter, count: Number(rows[0]?.[filter.id] ?? 0) }))
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
