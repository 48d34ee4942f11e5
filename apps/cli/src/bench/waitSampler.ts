/**
 * Who waits on what during a bench phase (`BENCH_SAMPLE_WAITS=1` in `bench:peers`): every 10 ms, each backend of
 * the database that is waiting, with the statement it runs (classified by shape) and the row it waits for — for a
 * `Lock:transactionid` wait the row is the one it holds the tuple lock of (Postgres takes the tuple's heavyweight lock
 * before it sleeps on the holder's transaction id), for `Lock:tuple` the tuple lock it asks for. Summed as mean
 * backends per (statement, wait, relation). The sampling costs Postgres CPU itself: figures of a sampled run are for
 * attribution only, never for the CPU per command.
 */
import { Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"

const PROBE = "/* bench-probe */"

/** The statement shapes of a command, by a fragment only that statement has: a SQL expression over `pg_stat_activity` alias `a`. */
export type Classify = (a: string) => string

const classifyCommand: Classify = (a) => `CASE
    WHEN ${a}.query LIKE '%ses AS (%' THEN 'enqueue'
    WHEN ${a}.query LIKE '%opening AS (%' THEN 'start'
    WHEN ${a}.query LIKE '%fence AS (SELECT l.session_id FROM cloud_worker_leases%' THEN 'close (fenced append)'
    WHEN ${a}.query LIKE 'WITH live AS%' THEN 'next'
    WHEN ${a}.query LIKE '%cloud_worker_leases%' THEN 'lease'
    WHEN ${a}.query LIKE 'LISTEN%' OR ${a}.backend_type <> 'client backend' THEN 'other'
    ELSE left(regexp_replace(${a}.query, '\\s+', ' ', 'g'), 40) END`

export interface WaitSample {
  readonly statement: string
  readonly wait: string
  readonly relation: string
  readonly backends: number
}

export const sampleWaits = <A, E, R>(during: Effect.Effect<A, E, R>, classify: Classify = classifyCommand) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const totals = new Map<string, number>()
    let samples = 0
    const once = sql.unsafe<{ statement: string; wait: string; relation: string | null; n: number }>(
      `SELECT ${PROBE} ${classify("a")} AS statement,
         a.wait_event_type || ':' || a.wait_event || coalesce(' behind ' || (
           SELECT ${classify("h")} || CASE WHEN h.state = 'active' THEN '' ELSE ' (' || h.state || ')' END
           FROM pg_locks w JOIN pg_locks hl ON hl.locktype = 'transactionid' AND hl.transactionid = w.transactionid AND hl.granted
             JOIN pg_stat_activity h ON h.pid = hl.pid
           WHERE w.pid = a.pid AND NOT w.granted AND w.locktype = 'transactionid' LIMIT 1), '') AS wait,
         coalesce(
           (SELECT l.relation::regclass::text FROM pg_locks l
            WHERE l.pid = a.pid AND l.locktype = 'tuple' AND (l.granted OR a.wait_event = 'tuple') LIMIT 1),
           (SELECT l.relation::regclass::text FROM pg_locks l
            WHERE l.pid = a.pid AND NOT l.granted AND l.relation IS NOT NULL LIMIT 1),
           CASE WHEN a.wait_event_type = 'Lock' THEN (SELECT l.locktype FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) END) AS relation,
         count(*)::int AS n
       FROM pg_stat_activity a
       WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.state = 'active'
         AND a.query NOT LIKE '%bench-probe%'
       GROUP BY 1, 2, 3`
    ).pipe(Effect.orDie)
    const sampler = yield* Effect.forkChild(Effect.forever(Effect.gen(function*() {
      const rows = yield* once
      samples++
      for (const row of rows) {
        const key = `${row.statement}\u0000${row.wait ?? "running"}\u0000${row.relation ?? ""}`
        totals.set(key, (totals.get(key) ?? 0) + Number(row.n))
      }
      yield* Effect.sleep(10)
    })))
    const result = yield* during
    yield* Fiber.interrupt(sampler)
    const waits: Array<WaitSample> = [...totals].map(([key, n]) => {
      const [statement, wait, relation] = key.split("\u0000") as [string, string, string]
      return { statement, wait, relation, backends: Math.round((n / Math.max(samples, 1)) * 1000) / 1000 }
    }).sort((a, b) => b.backends - a.backends)
    return { result, samples, waits }
  })

export const waitsMarkdown = (samples: number, waits: ReadonlyArray<WaitSample>) => [
  `| statement | wait (running = on CPU or in the kernel) | relation of the row waited for | mean backends (${samples} samples) |`,
  "|---|---|---|---|",
  ...waits.filter((w) => w.backends >= 0.005).map((w) => `| ${w.statement} | ${w.wait} | ${w.relation} | ${w.backends} |`)
].join("\n")
