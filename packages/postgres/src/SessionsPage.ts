import { decodeSessionCursor, encodeSessionCursor } from "@cowork/domain"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import { countEstimate, EXACT_COUNT_LIMIT } from "./CountEstimate.ts"

/** A session with its projection: `s` is `cloud_sessions`, `p` its `cloud_session_projections` row. */
export const SESSIONS_FROM = `cloud_sessions s JOIN cloud_session_projections p ON p.session_id = s.id`

export interface SessionsPageQuery {
  readonly cursor?: string | undefined
  readonly limit: number
  /** A case-insensitive substring of the title (`%` and `_` match themselves). */
  readonly q?: string | undefined
}

const escapeLike = (value: string): string => value.replace(/[\\%_]/g, (c) => `\\${c}`)

/**
 * One page of an org's sessions, newest first: `columns` over `s` / `p`, the org's sessions narrowed by `filters`
 * (SQL conditions; `param` binds a value and returns its placeholder, `$1` is the org) and by the title search.
 * Keyset paging on (created_at, id) from the cursor's session, which must be the org's own; the total is of every
 * match, not just this page: exact up to `EXACT_COUNT_LIMIT`, the planner's estimate beyond.
 */
export const sessionsPage = <Row extends { readonly id: string }>(
  sql: SqlClient.SqlClient,
  orgId: string,
  columns: string,
  query: SessionsPageQuery,
  filters: (param: (value: unknown) => string) => ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    const params: Array<unknown> = [orgId]
    const param = (value: unknown) => {
      params.push(value)
      return `$${params.length}`
    }
    const conditions = ["s.org_id = $1", ...filters(param)]
    if (query.q !== undefined && query.q !== "") conditions.push(`s.title ILIKE ${param(`%${escapeLike(query.q)}%`)}`)
    const where = conditions.join(" AND ")
    const totalEstimate = yield* countEstimate(sql, SESSIONS_FROM, where, params)
    const cursorId = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor)
    const keyset = cursorId === undefined
      ? ""
      : ` AND (s.created_at, s.id) < (SELECT c.created_at, c.id FROM cloud_sessions c WHERE c.id = ${param(cursorId)} AND c.org_id = $1)`
    // Few matches of a narrowed list (a search, a tag, a smart filter): gather them through whatever index finds them
    // (trigram, tags, creator) and sort those, instead of walking the org's sessions newest first until enough match —
    // a walk that reads the whole org when the matches are old. The order is the same; the sort key is an expression,
    // so the planner cannot take the walk. Many matches: the walk, which stops after a page.
    const gather = conditions.length > 1 && totalEstimate <= EXACT_COUNT_LIMIT
    const order = gather ? `(s.created_at + interval '0 seconds') DESC, s.id DESC` : `s.created_at DESC, s.id DESC`
    const rows = yield* sql.unsafe<Row>(
      `SELECT ${columns} FROM ${SESSIONS_FROM} WHERE ${where}${keyset} ORDER BY ${order} LIMIT ${param(query.limit + 1)}`,
      params
    )
    const page = rows.slice(0, query.limit)
    const last = page[page.length - 1]
    return {
      rows: page,
      nextCursor: rows.length > query.limit && last !== undefined ? encodeSessionCursor(last.id) : null,
      totalEstimate
    }
  })
