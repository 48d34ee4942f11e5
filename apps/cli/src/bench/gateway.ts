/**
 * `npm run bench:gateway`: deliveries per second through 1 and 2 `cowork gateway` replicas to a loopback webhook
 * receiver, and event commit → provider receive latency p50 / p99. Real processes on an embedded Postgres started
 * here: `cowork web`, `cowork worker` (scripted runtime) and the gateways, as deployed.
 *
 * For each replica count, on a fresh binding:
 * 1. throughput: a backlog of BENCH_GATEWAY_DELIVERIES replies is produced with no gateway running (bound sessions
 *    prompted; the outbox rows wait `pending`), then the replicas start; rate = deliveries / (last receive − first
 *    receive);
 * 2. latency: with the replicas running, BENCH_GATEWAY_LATENCY_REPLIES replies produced at a steady pace; latency =
 *    the receiver's arrival time minus the delivery row's `created_at` (the transaction that appended the event).
 *
 * 3. CPU per delivery over the backlog (/proc): the web process, the gateways, every Postgres process.
 *
 * Prints the results and appends them, with the load average, to docs/benchmarks.md.
 */
import { Database, freePort, startEmbeddedPostgres } from "@cowork/postgres"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { cpuOf, postgresCpu } from "./procCpu.ts"
import { envInt, percentile, type Proc, sleep, spawnCowork } from "./stack.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const mainPath = Path.join(repoRoot, "apps/cli/src/main.ts")
const DELIVERIES = envInt("BENCH_GATEWAY_DELIVERIES", 300)
const LATENCY_REPLIES = envInt("BENCH_GATEWAY_LATENCY_REPLIES", 60)
const SESSIONS = 30

const runCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<string>((resolve, reject) =>
    ChildProcess.execFile(process.execPath, [mainPath, ...args], { cwd: repoRoot, env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`cowork ${args.join(" ")}: ${stderr}`))))

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 120_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

const call = async (baseUrl: string, token: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await response.text()
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`)
  return (text === "" ? undefined : JSON.parse(text)) as any
}

/** Records every POST's idempotency key and arrival time, per path. */
const startReceiver = async () => {
  const arrivals = new Map<string, Array<{ key: string; at: number }>>()
  const server = Http.createServer((req, res) => {
    const at = Date.now()
    req.resume()
    req.on("end", () => {
      const list = arrivals.get(req.url ?? "/") ?? []
      list.push({ key: String(req.headers["idempotency-key"] ?? ""), at })
      arrivals.set(req.url ?? "/", list)
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrivals, close: () => server.close() }
}


interface Row {
  readonly replicas: number
  readonly deliveries: number
  readonly perSecond: number
  readonly latencyReplies: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly duplicates: number
  /** CPU ms per delivery over the backlog phase (/proc utime + stime): the web role, the gateways together, Postgres. */
  readonly cpuMsPerDelivery: { readonly web: number; readonly gateways: number; readonly postgres: number }
}

const main = Effect.gen(function*() {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-bench-gateway-"))
  Fs.chmodSync(dataDir, 0o755)
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
  const loadAtStart = Os.loadavg().map((n) => n.toFixed(2)).join(" / ")
  const cluster = yield* startEmbeddedPostgres(Path.join(dataDir, "postgres"))
  yield* Database.ensureDatabase(cluster.url("postgres"), "bench_gateway")
  const databaseUrl = cluster.url("bench_gateway")
  const postmaster = Number(Fs.readFileSync(Path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0])
  const env = {
    OPEN_COWORK_DATABASE_URL: databaseUrl,
    OPEN_COWORK_DATA_DIR: dataDir,
    OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "100000000",
    OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "100000000",
    OPEN_COWORK_CLOUD_QUOTA_PROMPTS_PER_HOUR: "100000000",
    OPEN_COWORK_CLOUD_QUOTA_QUEUED_COMMANDS: "100000000",
    // The backlog is counted at the claim like any org's deliveries; the bench measures throughput, not the quota.
    OPEN_COWORK_CLOUD_QUOTA_CHANNEL_DELIVERIES_PER_HOUR: "100000000",
    // The receiver listens on loopback: allowed explicitly (web at binding create, gateways at send).
    OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1"
  }
  yield* Effect.promise(() => runCli(["migrate"], env))
  const admin = (yield* Effect.promise(() => runCli(["admin", "token", "create", "--scopes", "web,admin", "--name", "bench"], env))).trim().split("\n").at(-1)!
  const serving = { ...env, OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false" }
  const webPort = yield* Effect.promise(() => freePort())
  const baseUrl = `http://127.0.0.1:${webPort}`
  const processes: Array<Proc> = []
  yield* Effect.addFinalizer(() => Effect.promise(async () => {
    for (const proc of processes) proc.child.kill("SIGKILL")
    await Promise.all(processes.map((proc) => proc.exited))
  }))
  processes.push(spawnCowork("web", { ...serving, OPEN_COWORK_CLOUD_PORT: String(webPort) }))
  processes.push(spawnCowork("worker", {
    ...serving,
    OPEN_COWORK_CLOUD_WORKER_ID: "bench-gateway-worker",
    OPEN_COWORK_CLOUD_WORKER_CONCURRENCY: "8",
    OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "500",
    OPEN_COWORK_SCRIPTED_DELTAS: "1"
  }))
  yield* Effect.promise(() => waitFor("web ready", async () => (await fetch(`${baseUrl}/readyz`)).status === 200))
  const receiver = yield* Effect.promise(() => startReceiver())
  yield* Effect.addFinalizer(() => Effect.sync(() => receiver.close()))
  const sql = Context.get(yield* Layer.build(Database.layer({ url: Redacted.make(databaseUrl), maxConnections: 2, applicationName: "bench-gateway" })), SqlClient.SqlClient)
  const rowsOf = (bindingId: string) =>
    sql<{ idempotency_key: string; status: string; created_at: Date }>`
      SELECT idempotency_key, status, created_at FROM cloud_channel_deliveries WHERE channel_binding_id = ${bindingId}`.pipe(Effect.orDie)

  const measure = (replicas: number) =>
    Effect.gen(function*() {
      const path = `/hook/${replicas}`
      const binding = (yield* Effect.promise(() => call(baseUrl, admin, "POST", "/api/channels/bindings", {
        providerKind: "webhook", providerId: "bench", displayName: `bench ${replicas}`, externalTarget: `${receiver.url}${path}`
      }))).binding.id as string
      const token = (yield* Effect.promise(() => call(baseUrl, admin, "POST", "/api/channels/gateway-tokens", { name: `bench-${replicas}`, channelBindingIds: [binding] }))).secret as string
      const sessions: Array<string> = []
      for (let s = 0; s < SESSIONS; s++) {
        const session = (yield* Effect.promise(() => call(baseUrl, admin, "POST", "/api/sessions", { title: `bench ${replicas}-${s}` }))).session.id as string
        yield* Effect.promise(() => call(baseUrl, admin, "POST", `/api/channels/bindings/${binding}/sessions`, { externalThreadId: `t${s}`, sessionId: session }))
        sessions.push(session)
      }
      // 1. The backlog, produced with no gateway running.
      for (let i = 0; i < DELIVERIES; i++) {
        yield* Effect.promise(() => call(baseUrl, admin, "POST", `/api/sessions/${sessions[i % SESSIONS]}/prompt`, { text: `backlog ${i}` }))
      }
      yield* Effect.promise(() => waitFor(`${DELIVERIES} pending deliveries`, () =>
        Effect.runPromise(rowsOf(binding)).then((rows) => rows.length >= DELIVERIES), 600_000))

      const gateways = Array.from({ length: replicas }, (_, i) => i)
      const ports: Array<number> = []
      for (const i of gateways) {
        const port = yield* Effect.promise(() => freePort())
        ports.push(port)
        processes.push(spawnCowork("gateway", {
          OPEN_COWORK_GATEWAY_CLOUD_URL: baseUrl,
          OPEN_COWORK_GATEWAY_TOKEN: token,
          OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: env.OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS,
          OPEN_COWORK_GATEWAY_PORT: String(port),
          OPEN_COWORK_GATEWAY_ID: `bench-${replicas}-${i}`,
          OPEN_COWORK_GATEWAY_PROVIDERS: JSON.stringify([{ id: "bench", kind: "webhook", timeoutMs: 5_000 }])
        }))
      }
      const arrivals = () => receiver.arrivals.get(path) ?? []
      // CPU from the first arrival on (the gateways' start is not a delivery's cost) to the last.
      const webPid = processes[0]!.child.pid!
      const gatewayPids = processes.slice(-replicas).map((proc) => proc.child.pid!)
      const cpuNow = () => ({
        web: cpuOf(webPid, false),
        gateways: gatewayPids.reduce((sum, pid) => sum + cpuOf(pid, false), 0),
        postgres: postgresCpu(postmaster)
      })
      yield* Effect.promise(() => waitFor("the first delivery", async () => arrivals().length > 0, 600_000))
      const cpuAtFirst = cpuNow()
      const arrivedAtFirst = new Set(arrivals().map((a) => a.key)).size
      yield* Effect.promise(() => waitFor("the backlog delivered", async () => new Set(arrivals().map((a) => a.key)).size >= DELIVERIES, 600_000))
      const cpuAtLast = cpuNow()
      const perDelivery = (key: "web" | "gateways" | "postgres") =>
        Math.round(((cpuAtLast[key] - cpuAtFirst[key]) / Math.max(1, DELIVERIES - arrivedAtFirst)) * 100) / 100
      const cpuMsPerDelivery = { web: perDelivery("web"), gateways: perDelivery("gateways"), postgres: perDelivery("postgres") }
      const backlog = [...arrivals()].sort((a, b) => a.at - b.at)
      const perSecond = (DELIVERIES - 1) / ((backlog.at(-1)!.at - backlog[0]!.at) / 1000)

      // 2. Latency with the replicas running: one reply every 100 ms.
      for (let i = 0; i < LATENCY_REPLIES; i++) {
        yield* Effect.promise(() => call(baseUrl, admin, "POST", `/api/sessions/${sessions[i % SESSIONS]}/prompt`, { text: `latency ${i}` }))
        yield* Effect.sleep(100)
      }
      yield* Effect.promise(() => waitFor("the latency replies delivered", async () =>
        new Set(arrivals().map((a) => a.key)).size >= DELIVERIES + LATENCY_REPLIES, 300_000))
      const firstArrival = new Map<string, number>()
      for (const arrival of arrivals()) if (!firstArrival.has(arrival.key)) firstArrival.set(arrival.key, arrival.at)
      const rows = yield* rowsOf(binding)
      const backlogKeys = new Set(backlog.map((a) => a.key))
      const latencies = rows
        .filter((row) => !backlogKeys.has(row.idempotency_key) && firstArrival.has(row.idempotency_key))
        .map((row) => firstArrival.get(row.idempotency_key)! - new Date(row.created_at).getTime())
        .sort((a, b) => a - b)
      for (const i of gateways) processes.at(-replicas + i)!.child.kill("SIGTERM")
      yield* Effect.promise(() => Promise.all(processes.slice(-replicas).map((proc) => proc.exited)))
      return {
        replicas,
        deliveries: DELIVERIES,
        perSecond: Math.round(perSecond * 10) / 10,
        latencyReplies: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? NaN,
        duplicates: arrivals().length - firstArrival.size,
        cpuMsPerDelivery
      } satisfies Row
    })

  const results: Array<Row> = []
  for (const replicas of [1, 2]) {
    const row = yield* measure(replicas)
    yield* Effect.sync(() => process.stdout.write(`bench:gateway ${JSON.stringify(row)}\n`))
    results.push(row)
  }
  const loadAtEnd = Os.loadavg().map((n) => n.toFixed(2)).join(" / ")
  const cpus = Os.cpus()
  const report = [
    "",
    `## ${new Date().toISOString()} — \`npm run bench:gateway\``,
    "",
    `Machine: ${Os.type()} ${Os.release()} ${Os.arch()}; ${cpus.length} × ${cpus[0]?.model.trim() ?? "cpu"}; Node ${process.version};`,
    `load average (1/5/15 min) at start: ${loadAtStart}; at end: ${loadAtEnd}.`,
    "Setup: embedded Postgres (fsync on); `cowork web`, `cowork worker` (scripted runtime, concurrency 8) and the gateway",
    "replicas as separate processes (defaults: claim batch 20, 16 sends at once, push stream + 5 s poll), the outbound",
    "webhook provider posting to a loopback receiver in the benchmark process. Throughput: a backlog of replies produced",
    "with no gateway running, then the replicas start; rate = deliveries / (last − first arrival). Latency: one reply every",
    "100 ms with the replicas running; arrival minus the delivery row's `created_at` (the event's transaction). CPU per",
    "delivery: /proc utime + stime of the web process, the gateways and every Postgres process from the backlog's first",
    "arrival at the receiver to its last, over the deliveries that arrived in between.",
    "",
    "| replicas | backlog deliveries | deliveries /s | latency replies | commit → provider p50 / p99 / max | raw duplicates | CPU ms / delivery: web / gateways / Postgres |",
    "|---|---|---|---|---|---|---|",
    ...results.map((r) => `| ${r.replicas} | ${r.deliveries} | ${r.perSecond} | ${r.latencyReplies} | ${r.p50} / ${r.p99} / ${r.max} ms | ${r.duplicates} | ${r.cpuMsPerDelivery.web} / ${r.cpuMsPerDelivery.gateways} / ${r.cpuMsPerDelivery.postgres} |`),
    ""
  ].join("\n")
  Fs.appendFileSync(Path.join(repoRoot, "docs/benchmarks.md"), report)
  yield* Effect.sync(() => process.stdout.write(report))
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
