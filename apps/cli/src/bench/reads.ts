/**
 * `npm run bench:reads`: what each authenticated read of the workbench costs at scale, one request at a time (no
 * contention: the read's own cost). One `cowork up` (web + worker + scheduler, scripted runtime) on an embedded
 * Postgres started here, with BENCH_READS_THREADS stored sessions (default 100,000, as the enterprise-scale launch
 * profile: 50 through the API, each prompted so its view has messages, the rest inserted in bulk like `cowork load`
 * does), a few artifacts and a workflow, then vacuumed and analyzed as autovacuum would leave them.
 *
 * Per route, BENCH_READS_REQUESTS (default 100) sequential requests after 5 unmeasured ones: latency p50 / p95, and the
 * CPU per request of the `cowork up` process and of Postgres (postmaster + backends, exited parallel workers included,
 * from /proc). CPU per request is the steady figure on a shared box; compare trees with alternating runs.
 *
 * Two unbounded-by-history reads are seeded at scale too: one long session of BENCH_READS_LONG_MESSAGES (default
 * 5,000) projected messages of ~1 KiB (its view route), and BENCH_READS_DELIVERIES (default 20,000) deliveries of one
 * channel binding (the delivery feed, whose total counts the matches). Each row also gives the response's bytes.
 *
 * Prints JSON and a markdown table (BENCH_NO_APPEND=1 or not: it never writes docs/benchmarks.md by itself).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Database } from "@cowork/postgres"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { performance } from "node:perf_hooks"
import { cpuOf, postgresCpu } from "./procCpu.ts"
import { benchCluster, createSessions, envInt, gitHead, machine, percentile, pool, prompt, round, sleep, startStack, stopStack } from "./stack.ts"

const THREADS = envInt("BENCH_READS_THREADS", 100_000)
const REQUESTS = envInt("BENCH_READS_REQUESTS", 100)
const API_SESSIONS = 50
const PROMPTS_PER_SESSION = 4
const LONG_MESSAGES = envInt("BENCH_READS_LONG_MESSAGES", 5_000)
const DELIVERIES = envInt("BENCH_READS_DELIVERIES", 20_000)

const main = Effect.gen(function*() {
  const cluster = yield* benchCluster("reads")
  const dataDir = `${cluster.dataDir}/data`
  const stack = yield* Effect.promise(() => startStack({ databaseUrl: cluster.url, dataDir, workerConcurrency: 8 }))
  yield* Effect.addFinalizer(() => stopStack(stack))
  const sqlLayer = Database.layer({ url: Redacted.make(cluster.url), maxConnections: 1, applicationName: "bench-reads" })
  const run = <A>(text: string, params: ReadonlyArray<unknown> = []) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql.unsafe<A & object>(text, params as Array<unknown>)
    }).pipe(Effect.provide(sqlLayer), Effect.scoped, Effect.orDie)

  // ---- seed ------------------------------------------------------------------------------------------------------
  const sessions = yield* Effect.promise(() => createSessions(stack, API_SESSIONS, "bench thread"))
  yield* Effect.promise(() => pool(sessions.flatMap((id) => Array.from({ length: PROMPTS_PER_SESSION }, () => id)), 16, (id, i) => prompt(stack, id, `[[events:2]] read bench ${i}`)))
  let lastBytes = 0
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${stack.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${stack.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    lastBytes = Buffer.byteLength(text)
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 200)}`)
    return (response.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : undefined
  }
  const artifacts: Array<string> = []
  for (let i = 0; i < 20; i++) {
    const up = await_(call("POST", `/api/sessions/${sessions[i % API_SESSIONS]}/artifacts`, { filename: `bench-${i}.bin`, contentType: "application/octet-stream", dataBase64: Buffer.alloc(16_384, i).toString("base64") }))
    artifacts.push((yield* up).artifact.id)
  }
  yield* await_(call("POST", "/api/workflows", { title: "bench workflow", instructions: "read bench", agentName: "build", triggers: [{ type: "manual", enabled: true }] }))
  const [{ org_id: org }] = yield* run<{ org_id: string }>(`SELECT org_id FROM cloud_sessions LIMIT 1`)
  yield* run(`WITH s AS (INSERT INTO cloud_sessions (id, org_id, title) SELECT 'ses_bench' || g, $1, 'stored thread ' || g
      FROM generate_series(1, $2) g RETURNING id)
    INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) SELECT id, $1, 0 FROM s`, [org, THREADS - API_SESSIONS])
  // A long session: its projection holds LONG_MESSAGES messages (as after that many turns), its log's sequence past them.
  const longSession = (yield* Effect.promise(() => createSessions(stack, 1, "bench long session")))[0]!
  yield* run(`INSERT INTO cloud_session_projection_messages (session_id, message_id, role, text, command_id, attempt, sequence)
      SELECT $1, 'msg_long_' || g, CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END, repeat('long session text ', 56) || g, NULL, NULL, g + 1
      FROM generate_series(1, $2::int) g`, [longSession, LONG_MESSAGES])
  yield* run(`UPDATE cloud_session_projections SET projected_sequence = $2, last_sequence = $2 WHERE session_id = $1`, [longSession, LONG_MESSAGES + 1])
  // A busy channel binding's outbox: DELIVERIES deliveries, most of them sent.
  yield* run(`INSERT INTO cloud_channel_bindings (id, org_id, provider_kind, provider_id, display_name, external_target)
      VALUES ('chb_bench', $1, 'webhook', 'bench-hook', 'bench', 'bench-target')`, [org])
  yield* run(`INSERT INTO cloud_channel_deliveries (id, org_id, channel_binding_id, route_id, session_id, event_id, event_sequence,
        event_type, kind, payload, status, idempotency_key, created_at)
      SELECT 'chd_bench_' || g, $1, 'chb_bench', 'route_bench', $2, 'evt_bench_' || g, g, 'assistant.message', 'message',
        jsonb_build_object('text', 'bench reply ' || g), CASE WHEN g % 50 = 0 THEN 'dead' ELSE 'sent' END, 'key_bench_' || g,
        now() - (g || ' seconds')::interval
      FROM generate_series(1, $3::int) g`, [org, longSession, DELIVERIES])
  // Wait for the prompts to finish, then leave the tables as autovacuum would.
  for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
    const [{ n }] = yield* run<{ n: string }>(`SELECT count(*) AS n FROM cloud_session_commands WHERE status IN ('pending', 'running')`)
    if (Number(n) === 0) break
    yield* Effect.promise(() => sleep(200))
  }
  yield* run(`VACUUM ANALYZE`)

  // ---- measure ---------------------------------------------------------------------------------------------------
  const routes: ReadonlyArray<readonly [string, (i: number) => string]> = [
    ["GET /api/sessions?limit=50", () => "/api/sessions?limit=50"],
    ["GET /api/sessions?limit=20&q=thread N", (i) => `/api/sessions?limit=20&q=thread%20${i % 100}`],
    ["GET /api/threads?limit=50", () => "/api/threads?limit=50"],
    ["GET /api/threads/tags", () => "/api/threads/tags"],
    ["GET /api/threads/smart-filters", () => "/api/threads/smart-filters"],
    ["GET /api/sessions/:id/view", (i) => `/api/sessions/${sessions[i % API_SESSIONS]}/view`],
    [`GET /api/sessions/:id/view (${LONG_MESSAGES} messages)`, () => `/api/sessions/${longSession}/view`],
    ["GET /api/artifacts?limit=20", () => "/api/artifacts?limit=20"],
    ["GET /api/sessions/:id/artifacts/:id", (i) => `/api/sessions/${sessions[(i % 20) % API_SESSIONS]}/artifacts/${artifacts[i % 20]}`],
    ["GET /api/workflows", () => "/api/workflows"],
    ["GET /api/usage/summary", () => "/api/usage/summary"],
    ["GET /api/byok", () => "/api/byok"],
    [`GET /api/channels/deliveries?limit=50 (${DELIVERIES})`, () => "/api/channels/deliveries?limit=50"],
    [`GET /api/channels/deliveries?status=sent&limit=50 (${DELIVERIES})`, () => "/api/channels/deliveries?status=sent&limit=50"],
    ["GET /api/workspace", () => "/api/workspace"]
  ]
  const rows: Array<{ route: string; p50Ms: number; p95Ms: number; webCpuMsPerRequest: number; postgresCpuMsPerRequest: number; bytes: number }> = []
  for (const [route, path] of routes) {
    for (let i = 0; i < 5; i++) yield* await_(call("GET", path(i)))
    const latencies: Array<number> = []
    const web0 = cpuOf(stack.child.pid!, false)
    const pg0 = postgresCpu(cluster.postmaster)
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = performance.now()
      yield* await_(call("GET", path(i)))
      latencies.push(performance.now() - t0)
    }
    rows.push({
      route,
      p50Ms: round(percentile(latencies, 50), 2),
      p95Ms: round(percentile(latencies, 95), 2),
      webCpuMsPerRequest: round((cpuOf(stack.child.pid!, false) - web0) / REQUESTS, 2),
      postgresCpuMsPerRequest: round((postgresCpu(cluster.postmaster) - pg0) / REQUESTS, 2),
      bytes: lastBytes
    })
  }
  const result = { commit: gitHead(), machine: machine(), threads: THREADS, requestsPerRoute: REQUESTS, rows }
  const markdown = [
    `bench:reads at ${result.commit} — ${THREADS} stored threads, ${REQUESTS} sequential requests per route; load average ${result.machine.loadAverage}`,
    "",
    "| route | p50 ms | p95 ms | web CPU ms / request | Postgres CPU ms / request | response bytes |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| \`${r.route}\` | ${r.p50Ms} | ${r.p95Ms} | ${r.webCpuMsPerRequest} | ${r.postgresCpuMsPerRequest} | ${r.bytes} |`),
    ""
  ].join("\n")
  yield* Effect.sync(() => {
    process.stdout.write(`${JSON.stringify(result)}\n\n${markdown}\n`)
  })
}).pipe(Effect.scoped)

const await_ = <A>(promise: Promise<A>) => Effect.promise(() => promise)

NodeRuntime.runMain(main)
