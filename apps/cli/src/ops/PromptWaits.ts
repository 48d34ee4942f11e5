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
 * per application and wait (`Lock:transactionid`, `IO:WALSync`, `Client:ClientRead` is idle…; a row-lock wait with the
 * table of the row; a lock wait with the first backend it waits for: application, wait, statement start), the active backends
 * seen, and the statement most often seen waiting there. `summary`: the busiest, most first.
 */
export const postgresWaits = (url: string) => {
  const seen = new Map<string, { count: number; statements: Map<string, number> }>()
  let samples = 0
  return {
    sample: async () => {
      // A row-lock wait names the table of the row: Postgres takes the tuple's lock before it sleeps on the holder's
      // transaction id (Lock:transactionid), or asks for it (Lock:tuple).
      const rows = await query<{ app: string; wait: string; statement: string; relation: string | null; holder: string | null }>(url, `
        SELECT a.application_name AS app, coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') AS wait,
          left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) AS statement,
          CASE WHEN a.wait_event IN ('transactionid', 'tuple') THEN (
            SELECT l.relation::regclass::text FROM pg_locks l
            WHERE l.pid = a.pid AND l.locktype = 'tuple' AND (l.granted OR a.wait_event = 'tuple') LIMIT 1) END AS relation,
          CASE WHEN a.wait_event_type = 'Lock' THEN (
            SELECT h.application_name || ' ' || coalesce(h.wait_event_type || ':' || h.wait_event, CASE WHEN h.state = 'active' THEN 'CPU' ELSE h.state END)
              || ' ' || left(regexp_replace(h.query, '\\s+', ' ', 'g'), 24)
            FROM pg_stat_activity h WHERE h.pid = (pg_blocking_pids(a.pid))[1]) END AS holder
        FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.state = 'active' AND a.pid <> pg_backend_pid() AND a.application_name LIKE 'cowork-%' AND a.application_name <> 'cowork-drill'`)
      samples++
      for (const row of rows) {
        const key = `${row.app} ${row.wait}${row.relation === null ? "" : ` (row of ${row.relation})`}${row.holder === null ? "" : ` behind ${row.holder}`}`
        const entry = seen.get(key) ?? { count: 0, statements: new Map<string, number>() }
        entry.count++
        entry.statements.set(row.statement, (entry.statements.get(row.statement) ?? 0) + 1)
        seen.set(key, entry)
      }
    },
    summary: (top = 16) =>
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
