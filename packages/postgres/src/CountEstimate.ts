import { Effect } from "effect"
import type { SqlClient } from "effect/sql"

/** Up to this many matches a list's `totalEstimate` is exact; beyond it, the planner's estimate. */
export const EXACT_COUNT_LIMIT = 1_000

/**
 * A list's `totalEstimate` without counting every match: the rows of `FROM from WHERE where` (over `params`) counted
 * exactly up to `EXACT_COUNT_LIMIT` (a scan that stops there), and beyond that the planner's row estimate for the
 * same query (never less than the exact count seen). An org with 100,000 sessions costs one bounded scan and one
 * plan, not a join over all of them on every page.
 */
export const countEstimate = (sql: SqlClient.SqlClient, from: string, where: string, params: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    const counted = yield* sql.unsafe<{ n: number | bigint | string }>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM ${from} WHERE ${where} LIMIT ${EXACT_COUNT_LIMIT + 1}) m`,
      [...params]
    )
    const exact = Number(counted[0]?.n ?? 0)
    if (exact <= EXACT_COUNT_LIMIT) return exact
    const plan = yield* sql.unsafe<{ "QUERY PLAN": ReadonlyArray<{ readonly Plan: { readonly "Plan Rows": number } }> }>(
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${from} WHERE ${where}`,
      [...params]
    )
    const estimated = Math.round(Number(plan[0]?.["QUERY PLAN"]?.[0]?.Plan["Plan Rows"] ?? 0))
    return Math.max(exact, estimated)
  })
