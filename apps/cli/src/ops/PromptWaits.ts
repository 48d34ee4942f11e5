import { query } from "./Procs.ts"

const round = (n: number, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n)

/**
 * Where the load's prompts waited, from the database: in the mailbox (created → started by a worker: the claim
 * loop's promptness and the workers' free slots) and running (started → acked: the reply itself), p50 / p95 / max
 * in ms over the acked prompts `ids`.
 */
export const promptPhases = async (url: string, ids: ReadonlyArray<string>) => {
  const rows = await query<{ phase: string; p50: number | null; p95: number | null; max: number | null }>(url, `
    WITH c AS (
      SELECT extract(epoch FROM started_at - created_at) * 1000 AS queued, extract(epoch FROM completed_at - started_at) * 1000 AS running
      FROM cloud_session_commands WHERE id = ANY($1::text[]) AND status = 'acked' AND started_at IS NOT NULL
    )
    SELECT 'queued' AS phase, percentile_disc(0.5) WITHIN GROUP (ORDER BY queued)::float8 AS p50,
      percentile_disc(0.95) WITHIN GROUP (ORDER BY queued)::float8 AS p95, max(queued)::float8 AS max FROM c
    UNION ALL
    SELECT 'running', percentile_disc(0.5) WITHIN GROUP (ORDER BY running)::float8,
      percentile_disc(0.95) WITHIN GROUP (ORDER BY running)::float8, max(running)::float8 FROM c`, [ids])
  const of = (phase: string) => {
    const row = rows.find((r) => r.phase === phase)
    return { p50Ms: round(row?.p50 ?? Number.NaN, 0), p95Ms: round(row?.p95 ?? Number.NaN, 0), maxMs: round(row?.max ?? Number.NaN, 0) }
  }
  return { queued: of("queued"), running: of("running") }
}

/**
 * What the roles' Postgres connections wait on, sampled (`sample`, once a second with the harness's other samples):
 * per application and wait (`Lock:transactionid`, `IO:WALSync`, `Client:ClientRead` is idle…), the active backends
 * seen, and the statement most often seen waiting there. `summary`: the busiest, most first.
 */
export const postgresWaits = (url: string) => {
  const seen = new Map<string, { count: number; statements: Map<string, number> }>()
  let samples = 0
  return {
    sample: async () => {
      const rows = await query<{ app: string; wait: string; statement: string }>(url, `
        SELECT application_name AS app, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait,
          left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS statement
        FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() AND application_name LIKE 'cowork-%' AND application_name <> 'cowork-drill'`)
      samples++
      for (const row of rows) {
        const key = `${row.app} ${row.wait}`
        const entry = seen.get(key) ?? { count: 0, statements: new Map<string, number>() }
        entry.count++
        entry.statements.set(row.statement, (entry.statements.get(row.statement) ?? 0) + 1)
        seen.set(key, entry)
      }
    },
    summary: (top = 10) =>
      [...seen.entries()]
        .sort((a, b) => b[1].count - a[1].count)
        .slice(0, top)
        .map(([key, entry]) => ({
          wait: key,
          activePerSample: round(entry.count / Math.max(1, samples), 2),
          statement: [...entry.statements.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? ""
        }))
  }
}
