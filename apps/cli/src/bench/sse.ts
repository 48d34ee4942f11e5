/**
 * `npm run bench:sse`: SSE fan-out and idle cost (issue 15, targets 4 and 6), on an embedded Postgres started here.
 *
 * Fan-out: `cowork web` and `cowork worker` as SEPARATE child processes (so the web process's CPU and RSS are its
 * own), 100 sessions, and S subscribers per session (1, 10, 100 → 100, 1,000, 10,000 streams on one web process).
 * Per phase, prompts are offered open-loop at 50/s round-robin over the 100 sessions (a busy session's prompt is
 * queued, never skipped) and measured:
 * - commit → client: every frame every subscriber receives, from the event's `createdAt` (its transaction's time,
 *   at or before the commit; same machine, same clock) to its arrival, p50 / p99 / max;
 * - gaps and duplicates: each stream checks that the ids it receives are consecutive;
 * - event reads per notification: calls of the event-log read statement (pg_stat_statements) divided by the
 *   notifications, counted as the `session.changed` frames of one workspace stream (one per NOTIFY);
 * - web CPU per prompt: the web process's utime+stime (/proc) over the phase divided by the prompts;
 * - cores busy: the web process, the SSE client process(es) and the driver (which sends the prompts), each on its
 *   own — the clients run in `sseClients.ts` processes (BENCH_SSE_CLIENT_PROCS, default 1) so that parsing every
 *   frame neither delays the prompts nor the clients' clock readings;
 * - RSS per stream: the web process's RSS with the streams open minus before, divided by the streams;
 * - the split of the web CPU per prompt (the web's own counters, `/metrics`): per stream = the fan-out's writes to the
 *   streams' sockets (the time of the synchronous loop that hands each read to every subscriber — its CPU unless the
 *   process was preempted: one write per stream per read, the syscall included), per session = rendering + encoding each read once, and the rest (the prompt's
 *   request, the reads, decoding the rows, everything else) = web CPU − both. "Independent of subscribers except the
 *   socket write" holds when the rest and the per-session part stay flat across rows while the write part grows.
 *
 * Floor (target 4's "report it"): `sseFloor.ts`, a bare Node `http` server (no Effect, no Postgres) forked on its own,
 * holding the same streams opened by the same client code, writing each prompt — the fan-out row's frames and bytes per
 * prompt, one pre-built HTTP/1.1 chunk — with one `socket.write` per stream at the same prompts/s and subscribers per
 * session; its CPU per prompt from /proc as the web's, fitted a + b × subscribers the same way. b_ours − b_floor (total,
 * user, system) is what our per-subscriber path costs beyond one socket write of the same bytes in Node.
 *
 * Idle: `cowork up` (the all-in-one: web + worker + scheduler) with 1,000 open session streams, Postgres
 * statements per minute over a window (pg_stat_statements calls), with the statements that made them.
 *
 * Knobs: BENCH_SSE_SUBSCRIBERS ("1,10,100"), BENCH_SSE_CLIENT_PROCS (1), BENCH_SSE_SESSIONS (100), BENCH_SSE_RATE (50), BENCH_SSE_SECONDS (15),
 * BENCH_IDLE_STREAMS (1000), BENCH_IDLE_WINDOW_MS (60000), BENCH_SSE_PHASES ("fanout,floor,idle"), BENCH_NOTE (a line
 * for the report), BENCH_CHILD_NODE_ARGS (node flags for the web process), BENCH_SSE_HEAP_DIR (heap snapshots of the web before / with each
 * row's streams open), BENCH_SSE_FLOOR_FRAMES / BENCH_SSE_FLOOR_BYTES (a prompt's frames and bytes for floor rows with no fan-out row to
 * take them from: 7 / 2000), BENCH_NO_APPEND=1 (print only). Prints
 * the results and appends them to docs/benchmarks.md.
 */
import { Database, freePort, startEmbeddedPostgres } from "@cowork/postgres"
import { makeFetch, type Client } from "@cowork/client"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { childNodeArgs, envInt, envInts, gitHead, machine, pool, type Proc, round, sleep, spawnCowork, waitReady } from "./stack.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const SUBSCRIBERS = envInts("BENCH_SSE_SUBSCRIBERS", [1, 10, 100])
const SESSIONS = envInt("BENCH_SSE_SESSIONS", 100)
const RATE = envInt("BENCH_SSE_RATE", 50)
const SECONDS = envInt("BENCH_SSE_SECONDS", 15)
const IDLE_STREAMS = envInt("BENCH_IDLE_STREAMS", 1000)
const IDLE_WINDOW_MS = envInt("BENCH_IDLE_WINDOW_MS", 60_000)
const PHASES = new Set((process.env.BENCH_SSE_PHASES ?? "fanout,floor,idle").split(","))
const CLIENT_PROCS = envInt("BENCH_SSE_CLIENT_PROCS", 1)
const PROMPT = "[[events:3]] sse benchmark prompt"
const READ_STATEMENT = "FROM cloud_session_events%WHERE session_id = $1 AND sequence > $2"

const percentile = (sorted: Float64Array, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

// ---------------------------------------------------------------------------------------------------------------

// BENCH_CHILD_NODE_ARGS apply to the web process (`cowork web`, or `cowork up` when idle) only.
const spawnRole = (command: string, env: Record<string, string>): Proc =>
  spawnCowork(command, env, command === "worker" ? [] : [...childNodeArgs(), ...heapSnapshotArgs])

/**
 * BENCH_SSE_HEAP_DIR: a heap snapshot of the web process is written there before each fan-out row's streams open and
 * once they are open (after the RSS reading), to see what a stream holds — diff them by constructor. Each snapshot
 * stops the web process for a few seconds; the row's CPU and latency figures are not affected (taken later).
 */
const HEAP_DIR = process.env.BENCH_SSE_HEAP_DIR
const heapSnapshotArgs = HEAP_DIR === undefined ? [] : ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${HEAP_DIR}`]

/** Signals the web process to write a heap snapshot, and waits until it is written and the process answers again. */
const heapSnapshot = async (pid: number, baseUrl: string, label: string) => {
  if (HEAP_DIR === undefined) return
  const snapshots = () => Fs.readdirSync(HEAP_DIR).filter((name) => name.endsWith(".heapsnapshot"))
  const before = new Set(snapshots())
  process.kill(pid, "SIGUSR2")
  const deadline = Date.now() + 300_000
  for (;;) {
    await sleep(500)
    const written = snapshots().find((name) => !before.has(name))
    // Node writes the snapshot on the main thread: once it answers a request, the file is complete.
    if (written !== undefined && (await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false))) {
      Fs.renameSync(Path.join(HEAP_DIR, written), Path.join(HEAP_DIR, `${label}.heapsnapshot`))
      console.error(`heap snapshot: ${Path.join(HEAP_DIR, `${label}.heapsnapshot`)}`)
      return
    }
    if (Date.now() > deadline) throw new Error("heap snapshot not written within 300 s")
  }
}

const commonEnv = (databaseUrl: string, dataDir: string, port: number): Record<string, string> => ({
  OPEN_COWORK_DATABASE_URL: databaseUrl,
  OPEN_COWORK_CLOUD_PORT: String(port),
  OPEN_COWORK_CLOUD_WORKER_ID: "bench-sse-worker",
  OPEN_COWORK_CLOUD_WORKER_CONCURRENCY: "8",
  OPEN_COWORK_CLOUD_CHECKPOINTS: "false",
  OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: "100000",
  OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "100000000",
  OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "100000000",
  OPEN_COWORK_CLOUD_QUOTA_PROMPTS_PER_HOUR: "100000000",
  OPEN_COWORK_CLOUD_QUOTA_QUEUED_COMMANDS: "100000000",
  OPEN_COWORK_DATA_DIR: dataDir,
  OPEN_COWORK_CLOUD_LOG_LEVEL: "warn"
})

/**
 * CPU of a process in ms — user (utime: JavaScript, V8, libuv) and system (stime: the kernel on its behalf — socket
 * writes, and on loopback the receiver's TCP work run inside the sender's syscall) — and its RSS in bytes (Linux /proc).
 */
const procUsage = (pid: number) => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const userMs = (Number(fields[11]) * 1000) / 100
  const systemMs = (Number(fields[12]) * 1000) / 100
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return { cpuMs: userMs + systemMs, userMs, systemMs, rss: rssKiB * 1024 }
}

// ---------------------------------------------------------------------------------------------------------------

/** A child process of the bench (`sseClients.ts`, `sseFloor.ts`): asked over IPC, each request answered with its id. */
interface ClientProcess {
  readonly pid: number
  readonly ask: (message: { readonly type: string; readonly [key: string]: unknown }) => Promise<any>
  readonly kill: () => void
}

const forkChild = (file: string): ClientProcess => {
  const child = ChildProcess.fork(Path.join(import.meta.dirname, file), [], {
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  let next = 0
  const waiting = new Map<number, { resolve: (reply: any) => void; reject: (error: Error) => void }>()
  child.on("message", (message: any) => {
    waiting.get(message.id)?.resolve(message)
    waiting.delete(message.id)
  })
  child.once("exit", (code) => {
    for (const { reject } of waiting.values()) reject(new Error(`bench child ${file} exited (${code})`))
    waiting.clear()
  })
  return {
    pid: child.pid!,
    ask: (message) =>
      new Promise((resolve, reject) => {
        const id = ++next
        waiting.set(id, { resolve, reject })
        child.send({ ...message, id })
      }),
    kill: () => child.kill()
  }
}

const forkClients = () => forkChild("sseClients.ts")

/** Opens `targets` (one session stream each, from its tip) spread over the client processes, plus a workspace stream each. */
const openClients = async (baseUrl: string, token: string, targets: ReadonlyArray<{ readonly id: string; readonly tip: number }>) => {
  const clients = Array.from({ length: CLIENT_PROCS }, forkClients)
  try {
    await Promise.all(clients.map((client, c) =>
      client.ask({ type: "open", baseUrl, token, targets: targets.filter((_, i) => i % CLIENT_PROCS === c) })))
  } catch (error) {
    clients.forEach((client) => client.kill())
    throw error
  }
  return clients
}

/** Stops the clients and gathers what they received: latencies and fan-out delays (sorted), frame checks, bytes. */
const stopClients = async (clients: ReadonlyArray<ClientProcess>) => {
  const results = await Promise.all(clients.map((client) => client.ask({ type: "stop" })))
  const concat = (key: "latencies" | "fanout") => {
    const all = new Float64Array(results.reduce((n, r) => n + r[key].length, 0))
    let at = 0
    for (const r of results) {
      all.set(r[key], at)
      at += r[key].length
    }
    return all.sort()
  }
  const sum = (key: "frames" | "bytes" | "gaps" | "duplicates") => results.reduce((n, r) => n + (r[key] as number), 0)
  return {
    latencies: concat("latencies"),
    fanout: concat("fanout"),
    frames: sum("frames"),
    bytes: sum("bytes"),
    gaps: sum("gaps"),
    duplicates: sum("duplicates"),
    notifications: results[0]!.notifications as number
  }
}

const distribution = (sorted: Float64Array) => ({
  samples: sorted.length,
  p50: round(percentile(sorted, 50)),
  p99: round(percentile(sorted, 99)),
  max: round(sorted[sorted.length - 1] ?? Number.NaN)
})

const readCalls = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`SELECT pg_stat_clear_snapshot()`)
  const rows = yield* sql.unsafe<{ calls: number; ms: number }>(
    `SELECT coalesce(sum(calls), 0)::float8 AS calls, coalesce(sum(total_exec_time), 0)::float8 AS ms
     FROM pg_stat_statements WHERE query LIKE $1`,
    [`%${READ_STATEMENT}%`]
  )
  return { calls: Number(rows[0]!.calls), ms: Number(rows[0]!.ms) }
}).pipe(Effect.orDie)

/** The web's fan-out counters (`/metrics`, operator token): busy ms by part, writes to streams. */
const fanoutCounters = async (baseUrl: string, token: string) => {
  const response = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  if (!response.ok) return undefined
  const text = await response.text()
  // A web process from before the counters (a "before" tree in a before/after pair) has no split to report.
  if (!text.includes("open_cowork_cloud_sse_fanout_busy_ms_total")) return undefined
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0)
  return {
    encodeMs: value(/^open_cowork_cloud_sse_fanout_busy_ms_total\{[^}]*part="encode"[^}]*\} (\S+)$/m),
    writeMs: value(/^open_cowork_cloud_sse_fanout_busy_ms_total\{[^}]*part="write"[^}]*\} (\S+)$/m),
    writes: value(/^open_cowork_cloud_sse_stream_writes_total\{[^}]*outcome="written"[^}]*\} (\S+)$/m),
    slow: value(/^open_cowork_cloud_sse_stream_writes_total\{[^}]*outcome="slow_consumer"[^}]*\} (\S+)$/m)
  }
}

interface PhaseResult {
  readonly subscribersPerSession: number
  readonly streams: number
  readonly prompts: number
  readonly offeredRate: number
  readonly notifications: number
  readonly eventReads: number
  readonly readsPerNotification: number
  /** Mean execution time of one event read inside Postgres (pg_stat_statements). */
  readonly readExecMs: number
  readonly webCpuMsPerPrompt: number
  /** `webCpuMsPerPrompt` split: user time (utime) and system time (stime) of the web process. */
  readonly webUserMsPerPrompt: number
  readonly webSystemMsPerPrompt: number
  /**
   * The split of `webCpuMsPerPrompt` from the web's counters: per stream (the fan-out's socket writes), per session
   * (render + encode once per read), the rest (request, reads, decoding, everything else); writes per prompt and the
   * CPU per write. Undefined when the web's `/metrics` was not readable.
   */
  readonly split?: {
    readonly writeMsPerPrompt: number
    readonly encodeMsPerPrompt: number
    readonly restMsPerPrompt: number
    readonly writesPerPrompt: number
    readonly usPerWrite: number
    readonly slowConsumers: number
  }
  /** Cores the web process / the SSE client processes / the benchmark's driver (prompts) used over the phase. */
  readonly webCpuShare: number
  readonly clientCpuShare: number
  readonly driverCpuShare: number
  readonly rssPerStreamKiB: number
  readonly latency: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number }
  readonly fanoutDelay: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number }
  readonly gaps: number
  readonly duplicates: number
  readonly framesPerStreamExpected: number
  readonly missingFrames: number
  /** What a prompt brought each stream: its frames and their bytes (the floor writes the same per prompt). */
  readonly framesPerPromptPerStream: number
  readonly bytesPerPromptPerStream: number
  readonly failedPrompts: number
  /** POST /prompt → 202 (the web's enqueue transaction shares the web process's pool with the event reads). */
  readonly post: { readonly p50: number; readonly p99: number }
}

const fanoutPhase = (baseUrl: string, token: string, api: Client, webPid: number, sessions: ReadonlyArray<string>, perSession: number) =>
  Effect.gen(function*() {
    const api_ = api
    // Start every stream at the session's current tip: only this phase's events are counted.
    const tips = yield* Effect.promise(() =>
      pool(sessions, 16, async (id) => (await Effect.runPromise(api_.sessions.get({ params: { id } }))).session.lastSequence as number))
    const rssBefore = procUsage(webPid).rss
    yield* Effect.promise(() => heapSnapshot(webPid, baseUrl, `web-${perSession}-before`))
    const targets = sessions.flatMap((id, i) => Array.from({ length: perSession }, () => ({ id, tip: tips[i]! })))
    const clients = yield* Effect.promise(() => openClients(baseUrl, token, targets))
    yield* Effect.addFinalizer(() => Effect.sync(() => clients.forEach((client) => client.kill())))
    yield* Effect.sleep(3_000)
    const rssAfter = procUsage(webPid).rss
    yield* Effect.promise(() => heapSnapshot(webPid, baseUrl, `web-${perSession}-open`))
    const clientCpu = () => clients.reduce((sum, client) => sum + procUsage(client.pid).cpuMs, 0)
    const receivedFrames = () =>
      Promise.all(clients.map((client) => client.ask({ type: "count" }))).then((replies) => replies.reduce((sum, r) => sum + r.frames, 0))

    const readsBefore = yield* readCalls
    const countersBefore = yield* Effect.promise(() => fanoutCounters(baseUrl, token))
    const webBefore = procUsage(webPid)
    const cpuBefore = webBefore.cpuMs
    const clientBefore = clientCpu()
    const driverBefore = process.cpuUsage()
    const phaseStarted = performance.now()
    yield* Effect.promise(() => Promise.all(clients.map((client) => client.ask({ type: "measure" }))))
    const total = RATE * SECONDS
    const interval = 1000 / RATE
    const started = performance.now()
    const inflight: Array<Promise<unknown>> = []
    let failedPrompts = 0
    const posts: Array<number> = []
    for (let i = 0; i < total; i++) {
      yield* Effect.promise(() => sleep(started + i * interval - performance.now()))
      const sentAt = performance.now()
      inflight.push(Effect.runPromise(api.sessions.prompt({ params: { id: sessions[i % sessions.length]! }, payload: { text: PROMPT } })).then(
        () => void posts.push(performance.now() - sentAt),
        () => void failedPrompts++
      ))
    }
    const sendSeconds = (performance.now() - started) / 1000
    yield* Effect.promise(() => Promise.all(inflight))
    // Drain: until every stream has every event of every session (the tips), or a deadline.
    const finalTips = new Map<string, number>()
    const deadline = Date.now() + 60_000
    let expected = 0
    for (;;) {
      yield* Effect.sleep(500)
      const views = yield* Effect.promise(() =>
        pool(sessions, 16, async (id) => (await Effect.runPromise(api.sessions.get({ params: { id } }))).session))
      const settled = views.every((s: any) => s.status === "idle")
      expected = views.reduce((sum, s: any, i) => sum + (s.lastSequence - tips[i]!), 0) * perSession
      views.forEach((s: any) => finalTips.set(s.id, s.lastSequence))
      if ((settled && (yield* Effect.promise(receivedFrames)) >= expected) || Date.now() > deadline) break
    }
    const webAfter = procUsage(webPid)
    const cpuAfter = webAfter.cpuMs
    const countersAfter = yield* Effect.promise(() => fanoutCounters(baseUrl, token))
    const clientMs = clientCpu() - clientBefore
    const driver = process.cpuUsage(driverBefore)
    const phaseMs = performance.now() - phaseStarted
    const readsAfter = yield* readCalls
    const received = yield* Effect.promise(() => stopClients(clients))
    const notifications = received.notifications
    const postSorted = Float64Array.from(posts).sort()
    return {
      subscribersPerSession: perSession,
      streams: targets.length,
      prompts: total,
      offeredRate: round(total / sendSeconds),
      notifications,
      eventReads: readsAfter.calls - readsBefore.calls,
      readsPerNotification: round((readsAfter.calls - readsBefore.calls) / Math.max(1, notifications), 2),
      readExecMs: round((readsAfter.ms - readsBefore.ms) / Math.max(1, readsAfter.calls - readsBefore.calls), 2),
      webCpuMsPerPrompt: round((cpuAfter - cpuBefore) / total, 2),
      webUserMsPerPrompt: round((webAfter.userMs - webBefore.userMs) / total, 2),
      webSystemMsPerPrompt: round((webAfter.systemMs - webBefore.systemMs) / total, 2),
      ...(countersBefore === undefined || countersAfter === undefined ? {} : (() => {
        const writeMs = countersAfter.writeMs - countersBefore.writeMs
        const encodeMs = countersAfter.encodeMs - countersBefore.encodeMs
        const writes = countersAfter.writes - countersBefore.writes
        return {
          split: {
            writeMsPerPrompt: round(writeMs / total, 2),
            encodeMsPerPrompt: round(encodeMs / total, 3),
            restMsPerPrompt: round((cpuAfter - cpuBefore - writeMs - encodeMs) / total, 2),
            writesPerPrompt: round(writes / total, 1),
            usPerWrite: round((writeMs * 1000) / Math.max(1, writes), 1),
            slowConsumers: countersAfter.slow - countersBefore.slow
          }
        }
      })()),
      webCpuShare: round((cpuAfter - cpuBefore) / phaseMs, 2),
      clientCpuShare: round(clientMs / phaseMs, 2),
      driverCpuShare: round((driver.user + driver.system) / 1000 / phaseMs, 2),
      rssPerStreamKiB: round((rssAfter - rssBefore) / 1024 / targets.length, 1),
      latency: distribution(received.latencies),
      fanoutDelay: distribution(received.fanout),
      gaps: received.gaps,
      duplicates: received.duplicates,
      framesPerStreamExpected: round(expected / Math.max(1, targets.length)),
      missingFrames: Math.max(0, expected - received.frames),
      framesPerPromptPerStream: received.frames / Math.max(1, total * perSession),
      bytesPerPromptPerStream: received.bytes / Math.max(1, total * perSession),
      failedPrompts,
      post: { p50: round(percentile(postSorted, 50)), p99: round(percentile(postSorted, 99)) }
    } satisfies PhaseResult
  }).pipe(Effect.scoped)

const fanout = (url: string, dataDir: string) =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(() => freePort())
    const baseUrl = `http://127.0.0.1:${port}`
    const web = spawnRole("web", commonEnv(url, dataDir, port))
    yield* Effect.addFinalizer(() => Effect.promise(() => web.stop()))
    const token = yield* Effect.promise(() => waitReady(baseUrl, web))
    Fs.writeFileSync(Path.join(dataDir, "bench-token"), token)
    const livenessPort = yield* Effect.promise(() => freePort())
    const worker = spawnRole("worker", { ...commonEnv(url, dataDir, port), OPEN_COWORK_CLOUD_LIVENESS_PORT: String(livenessPort) })
    yield* Effect.addFinalizer(() => Effect.promise(() => worker.stop()))
    const api = yield* Effect.promise(() => Effect.runPromise(makeFetch({ baseUrl, token })))
    const sessions = yield* Effect.promise(() =>
      pool(Array.from({ length: SESSIONS }, (_, i) => i), 16, async (i) =>
        (await Effect.runPromise(api.sessions.create({ payload: { title: `sse-${i}` } }))).session.id as string))
    // Warm-up: one prompt per session (JIT, pools, the worker's runtimes), not measured.
    yield* Effect.promise(() => pool(sessions, 16, (id) => Effect.runPromise(api.sessions.prompt({ params: { id }, payload: { text: PROMPT } }))))
    const warmDeadline = Date.now() + 60_000
    for (;;) {
      yield* Effect.sleep(500)
      const views = yield* Effect.promise(() => pool(sessions, 16, async (id) => (await Effect.runPromise(api.sessions.get({ params: { id } }))).session))
      if (views.every((s: any) => s.status === "idle") || Date.now() > warmDeadline) break
    }
    const phases: Array<PhaseResult> = []
    for (const perSession of SUBSCRIBERS) {
      console.error(`fan-out: ${perSession} subscribers per session (${perSession * SESSIONS} streams), ${RATE} prompts/s for ${SECONDS} s …`)
      const result = yield* fanoutPhase(baseUrl, token, api, web.child.pid!, sessions, perSession)
      console.error(JSON.stringify(result))
      phases.push(result)
      yield* Effect.sleep(2_000)
    }
    return phases
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------------------------

/** What a prompt brings each stream when no fan-out row measured it (BENCH_SSE_PHASES without fanout). */
const FLOOR_FRAMES = envInt("BENCH_SSE_FLOOR_FRAMES", 7)
const FLOOR_BYTES = envInt("BENCH_SSE_FLOOR_BYTES", 2_000)

interface FloorResult {
  readonly subscribersPerSession: number
  readonly streams: number
  readonly prompts: number
  readonly framesPerPrompt: number
  readonly bytesPerWrite: number
  readonly cpuMsPerPrompt: number
  readonly userMsPerPrompt: number
  readonly systemMsPerPrompt: number
  readonly writesPerPrompt: number
  readonly rssPerStreamKiB: number
  readonly latency: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number }
  readonly gaps: number
  readonly duplicates: number
  readonly missingFrames: number
}

/**
 * One floor row (`sseFloor.ts`): the same streams opened by the same clients, the same prompts at the same rate, each
 * one pre-built chunk of a real prompt's frames and bytes written once to each of its session's streams; the floor
 * process's CPU per prompt from /proc, taken as the web's is (from `measure` until every stream has every frame).
 */
const floorPhase = (floor: ClientProcess, baseUrl: string, sessions: ReadonlyArray<string>, perSession: number, shape: { frames: number; bytes: number }) =>
  Effect.gen(function*() {
    const { tips } = yield* Effect.promise(() => floor.ask({ type: "tips", sessions }))
    const rssBefore = procUsage(floor.pid).rss
    const targets = sessions.flatMap((id, i) => Array.from({ length: perSession }, () => ({ id, tip: tips[i] as number })))
    const clients = yield* Effect.promise(() => openClients(baseUrl, "floor", targets))
    yield* Effect.addFinalizer(() => Effect.sync(() => clients.forEach((client) => client.kill())))
    yield* Effect.sleep(3_000)
    const rssAfter = procUsage(floor.pid).rss
    const before = procUsage(floor.pid)
    yield* Effect.promise(() => Promise.all(clients.map((client) => client.ask({ type: "measure" }))))
    const total = RATE * SECONDS
    const { writes } = yield* Effect.promise(() => floor.ask({ type: "run", sessions, rate: RATE, total, ...shape }))
    const expected = total * shape.frames * perSession
    const deadline = Date.now() + 60_000
    for (;;) {
      const frames = yield* Effect.promise(() =>
        Promise.all(clients.map((client) => client.ask({ type: "count" }))).then((replies) => replies.reduce((sum, r) => sum + r.frames, 0)))
      if (frames >= expected || Date.now() > deadline) break
      yield* Effect.sleep(100)
    }
    const after = procUsage(floor.pid)
    const received = yield* Effect.promise(() => stopClients(clients))
    return {
      subscribersPerSession: perSession,
      streams: targets.length,
      prompts: total,
      framesPerPrompt: shape.frames,
      bytesPerWrite: shape.bytes,
      cpuMsPerPrompt: round((after.cpuMs - before.cpuMs) / total, 2),
      userMsPerPrompt: round((after.userMs - before.userMs) / total, 2),
      systemMsPerPrompt: round((after.systemMs - before.systemMs) / total, 2),
      writesPerPrompt: round(writes / total, 1),
      rssPerStreamKiB: round((rssAfter - rssBefore) / 1024 / targets.length, 1),
      latency: distribution(received.latencies),
      gaps: received.gaps,
      duplicates: received.duplicates,
      missingFrames: Math.max(0, expected - received.frames)
    } satisfies FloorResult
  }).pipe(Effect.scoped)

/** The floor rows, in the fan-out rows' order, each with the frames and bytes per prompt its fan-out row measured. */
const floorRows = (fanoutRows: ReadonlyArray<PhaseResult> | undefined) =>
  Effect.gen(function*() {
    const floor = forkChild("sseFloor.ts")
    yield* Effect.addFinalizer(() => Effect.sync(() => floor.kill()))
    const { port } = yield* Effect.promise(() => floor.ask({ type: "listen" }))
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `floor-${i}`)
    const rows: Array<FloorResult> = []
    for (const perSession of SUBSCRIBERS) {
      const measured = fanoutRows?.find((p) => p.subscribersPerSession === perSession)
      const shape = measured === undefined || measured.framesPerPromptPerStream < 1
        ? { frames: FLOOR_FRAMES, bytes: FLOOR_BYTES }
        : { frames: Math.round(measured.framesPerPromptPerStream), bytes: Math.round(measured.bytesPerPromptPerStream) }
      console.error(`floor: ${perSession} subscribers per session, ${RATE} prompts/s for ${SECONDS} s, ${shape.frames} frames / ${shape.bytes} bytes per prompt …`)
      const result = yield* floorPhase(floor, `http://127.0.0.1:${port}`, sessions, perSession, shape)
      console.error(JSON.stringify(result))
      rows.push(result)
      yield* Effect.sleep(2_000)
    }
    return rows
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------------------------

const statementsByQuery = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`SELECT pg_stat_clear_snapshot()`)
  const rows = yield* sql.unsafe<{ query: string; calls: number }>(
    `SELECT query, sum(calls)::float8 AS calls FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT ILIKE '%pg_stat%'
     GROUP BY query`
  )
  return new Map(rows.map((row) => [row.query, Number(row.calls)]))
}).pipe(Effect.orDie)

const idle = (url: string, dataDir: string) =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(() => freePort())
    const baseUrl = `http://127.0.0.1:${port}`
    const up = spawnRole("up", commonEnv(url, dataDir, port))
    yield* Effect.addFinalizer(() => Effect.promise(() => up.stop()))
    const tokenFile = Path.join(dataDir, "bench-token")
    const known = Fs.existsSync(tokenFile) ? Fs.readFileSync(tokenFile, "utf8") : undefined
    const token = yield* Effect.promise(() => waitReady(baseUrl, up, known))
    const api = yield* Effect.promise(() => Effect.runPromise(makeFetch({ baseUrl, token })))
    const sessions = yield* Effect.promise(() =>
      pool(Array.from({ length: IDLE_STREAMS }, (_, i) => i), 16, async (i) =>
        (await Effect.runPromise(api.sessions.create({ payload: { title: `idle-${i}` } }))).session.id as string))
    const clients = yield* Effect.promise(() => openClients(baseUrl, token, sessions.map((id) => ({ id, tip: 0 }))))
    yield* Effect.addFinalizer(() => Effect.sync(() => clients.forEach((client) => client.kill())))
    // Let start-up work (first ticks, the streams' first reads) pass before the window.
    yield* Effect.sleep(10_000)
    const before = yield* statementsByQuery
    yield* Effect.sleep(IDLE_WINDOW_MS)
    const after = yield* statementsByQuery
    const perMinute = 60_000 / IDLE_WINDOW_MS
    const byQuery = [...after].map(([query, calls]) => ({
      query: query.replace(/\s+/g, " ").slice(0, 110),
      perMinute: round((calls - (before.get(query) ?? 0)) * perMinute)
    })).filter((row) => row.perMinute > 0).sort((a, b) => b.perMinute - a.perMinute)
    return {
      streams: sessions.length,
      windowMs: IDLE_WINDOW_MS,
      statementsPerMinute: round(byQuery.reduce((sum, row) => sum + row.perMinute, 0)),
      byQuery
    }
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------------------------

const mean = (v: ReadonlyArray<number>) => v.reduce((x, y) => x + y, 0) / v.length

/**
 * Least squares over the rows: a per-prompt figure = a + b × subscribers per session. From /proc (precise over each
 * 15-s row, unlike a timer around a sub-millisecond loop): a is what a prompt costs whatever its subscribers (request,
 * reads, decoding, encoding), b what each subscriber adds (its socket writes and whatever else grows with it).
 */
const fitRows = <R extends { readonly subscribersPerSession: number }>(rows: ReadonlyArray<R>, y: (p: R) => number) => {
  const xs = rows.map((p) => p.subscribersPerSession)
  const ys = rows.map(y)
  const [mx, my] = [mean(xs), mean(ys)]
  const b = xs.reduce((acc, x, i) => acc + (x - mx) * (ys[i]! - my), 0) / xs.reduce((acc, x) => acc + (x - mx) ** 2, 0)
  return { a: my - b * mx, b }
}

/** The fits of the per-prompt CPU (total / user / system) over rows: a + b × subscribers per session. */
const fits = <R extends { readonly subscribersPerSession: number }>(
  rows: ReadonlyArray<R>,
  total: (r: R) => number,
  user: (r: R) => number,
  system: (r: R) => number
) => ({ total: fitRows(rows, total), user: fitRows(rows, user), system: fitRows(rows, system) })

const fitCell = (f: { a: number; b: number }) => `${round(f.a, 2)} ms + ${round(f.b * 1000, 1)} µs × s`
const us = (ms: number) => `${round(ms * 1000, 1)} µs`

/**
 * Ours against the floor, per row and fitted: the per-subscriber excess b_ours − b_floor is what our fan-out costs per
 * subscriber per prompt beyond one socket write of the same bytes in bare Node (issue 15 target 4's "report it").
 */
const floorReport = (ours: ReadonlyArray<PhaseResult> | undefined, floor: ReadonlyArray<FloorResult>) => {
  const lines = [
    "",
    "Floor: a bare Node `http` server (`sseFloor.ts`: no Effect, no Postgres, no hub) holding the same streams, opened by",
    "the same client process, writing each prompt as ONE pre-built HTTP/1.1 chunk of the fan-out row's frames and bytes per",
    `prompt with one \`socket.write\` per stream, ${RATE} prompts/s round-robin over ${SESSIONS} sessions for ${SECONDS} s; its CPU per`,
    "prompt from /proc as the web's. Ours − floor per subscriber (b) is the excess of our per-subscriber path.",
    "",
    "| subscribers / session | ours: web CPU / prompt (user / system) | floor: CPU / prompt (user / system) | ours − floor | writes / prompt ours / floor | floor: frames, bytes / write | floor: tick → client p50 / p99 / max | floor: RSS / stream | floor: gaps / dups / missing |",
    "|---|---|---|---|---|---|---|---|---|"
  ]
  for (const f of floor) {
    const o = ours?.find((p) => p.subscribersPerSession === f.subscribersPerSession)
    lines.push(
      `| ${f.subscribersPerSession} | ${o === undefined ? "—" : `${o.webCpuMsPerPrompt} ms (${o.webUserMsPerPrompt} / ${o.webSystemMsPerPrompt})`} | ${f.cpuMsPerPrompt} ms (${f.userMsPerPrompt} / ${f.systemMsPerPrompt}) | ${o === undefined ? "—" : `${round(o.webCpuMsPerPrompt - f.cpuMsPerPrompt, 2)} ms`} | ${o?.split?.writesPerPrompt ?? "—"} / ${f.writesPerPrompt} | ${f.framesPerPrompt}, ${f.bytesPerWrite} B | ${f.latency.p50} / ${f.latency.p99} / ${f.latency.max} ms | ${f.rssPerStreamKiB} KiB | ${f.gaps} / ${f.duplicates} / ${f.missingFrames} |`
    )
  }
  if (floor.length < 2) return lines
  const fl = fits(floor, (r) => r.cpuMsPerPrompt, (r) => r.userMsPerPrompt, (r) => r.systemMsPerPrompt)
  lines.push("", "| fit (s = subscribers per session) | total | user | system |", "|---|---|---|---|")
  if (ours !== undefined && ours.length >= 2) {
    const o = fits(ours, (r) => r.webCpuMsPerPrompt, (r) => r.webUserMsPerPrompt, (r) => r.webSystemMsPerPrompt)
    lines.push(
      `| ours | ${fitCell(o.total)} | ${fitCell(o.user)} | ${fitCell(o.system)} |`,
      `| floor | ${fitCell(fl.total)} | ${fitCell(fl.user)} | ${fitCell(fl.system)} |`,
      `| **excess b_ours − b_floor** (per subscriber per prompt) | **${us(o.total.b - fl.total.b)}** | **${us(o.user.b - fl.user.b)}** | **${us(o.system.b - fl.system.b)}** |`
    )
    const split = ours.filter((p) => p.split !== undefined)
    if (split.length === ours.length) {
      // The floor writes exactly once per subscriber per prompt; ours may write more (a prompt's commits in more than
      // one read): the excess per write separates "more writes" from "more per write".
      const w = mean(split.map((p) => p.split!.writesPerPrompt / p.subscribersPerSession))
      lines.push(
        "",
        `Ours wrote ${round(w, 2)} times per subscriber per prompt (mean over the rows; the floor 1.00): per write, b_ours / ${round(w, 2)} = ` +
          `${us(o.total.b / w)} against the floor's ${us(fl.total.b)}, an excess of **${us(o.total.b / w - fl.total.b)} per write** ` +
          `(user ${us(o.user.b / w - fl.user.b)}, system ${us(o.system.b / w - fl.system.b)}).`
      )
    }
  } else lines.push(`| floor | ${fitCell(fl.total)} | ${fitCell(fl.user)} | ${fitCell(fl.system)} |`)
  return lines
}

const report = (results: any) => {
  const lines = [
    `## ${results.date} — \`npm run bench:sse\` (commit ${results.commit})`,
    "",
    `Machine: ${results.machine.os}; ${results.machine.cpus}; ${results.machine.memory} RAM; Node ${results.machine.node};`,
    `load average at start (1/5/15 min): ${results.machine.loadAverage}; at end: ${results.loadAtEnd}.`
  ]
  if (process.env.BENCH_NOTE) lines.push(`Note: ${process.env.BENCH_NOTE}`)
  if (results.fanout !== undefined) {
    lines.push(
      "",
      `Fan-out: \`cowork web\` and \`cowork worker\` (8 fibers, scripted runtime, checkpoints off) as separate processes;`,
      `${SESSIONS} sessions; ${RATE} prompts/s offered open-loop for ${SECONDS} s per row (prompt \`${PROMPT}\`); SSE clients in`,
      `${CLIENT_PROCS} process(es) of their own (\`sseClients.ts\`), prompts sent by the benchmark's driver process.`,
      "Commit → client = event `createdAt` (its transaction's START, so it includes the transaction itself)",
      "→ frame parsed by the client, every frame of every stream. NOTIFY at web → client = the workspace stream's `session.changed`",
      "(written straight from the notification, no read) → each session stream's frame carrying that tip: the fan-out's own delay.",
      "",
      "| subscribers / session | streams | prompts (offered /s) | notifications | event reads | reads / notification | web CPU / prompt (cores busy: web / SSE clients / driver) | RSS / stream | commit → client p50 / p99 / max | NOTIFY at web → client p50 / p99 / max | gaps / dups / missing frames | failed POSTs | POST → 202 p50 / p99 |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for (const p of results.fanout as Array<PhaseResult>) {
      lines.push(
        `| ${p.subscribersPerSession} | ${p.streams} | ${p.prompts} (${p.offeredRate}) | ${p.notifications} | ${p.eventReads} | ${p.readsPerNotification} (${p.readExecMs} ms each in Postgres) | ${p.webCpuMsPerPrompt} ms (${p.webCpuShare} / ${p.clientCpuShare} / ${p.driverCpuShare}) | ${p.rssPerStreamKiB} KiB | ${p.latency.p50} / ${p.latency.p99} / ${p.latency.max} ms (${p.latency.samples} frames) | ${p.fanoutDelay.p50} / ${p.fanoutDelay.p99} / ${p.fanoutDelay.max} ms (${p.fanoutDelay.samples}) | ${p.gaps} / ${p.duplicates} / ${p.missingFrames} | ${p.failedPrompts} | ${p.post.p50} / ${p.post.p99} ms |`
      )
    }
    const split = (results.fanout as Array<PhaseResult>).filter((p) => p.split !== undefined)
    if (split.length > 0) {
      lines.push(
        "",
        "Web CPU per prompt, split. Per stream = the time of the fan-out loop handing each read to every subscriber's socket",
        "(one write per stream per read, syscall included; the web's `open_cowork_cloud_sse_fanout_busy_ms_total{part=\"write\"}`",
        "and `_stream_writes_total`), per session = rendering + encoding each read once (`{part=\"encode\"}`), the rest = web CPU",
        "(/proc) − both: the prompt's request, the reads, decoding. The loop's figures come from a clock around it, so they",
        "include preemption (each write wakes a client process, which may take the core): an upper bound; the fit below is",
        "from /proc alone.",
        "",
        "| subscribers / session | web CPU / prompt | per stream: writes | writes / prompt | CPU / write (loop clock) | per session: render + encode | the rest | without the per-stream writes | slow consumers ended |",
        "|---|---|---|---|---|---|---|---|---|",
        ...split.map((p) =>
          `| ${p.subscribersPerSession} | ${p.webCpuMsPerPrompt} ms | ${p.split!.writeMsPerPrompt} ms | ${p.split!.writesPerPrompt} | ${p.split!.usPerWrite} µs | ${p.split!.encodeMsPerPrompt} ms | ${p.split!.restMsPerPrompt} ms | ${round(p.webCpuMsPerPrompt - p.split!.writeMsPerPrompt, 2)} ms | ${p.split!.slowConsumers} |`
        )
      )
      if (split.length >= 2) {
        const { a, b } = fitRows(split, (p) => p.webCpuMsPerPrompt)
        const writesPerSubscriber = mean(split.map((p) => p.split!.writesPerPrompt / p.subscribersPerSession))
        const maxS = Math.max(...split.map((p) => p.subscribersPerSession))
        lines.push(
          "",
          `Fit over the rows (web CPU per prompt = a + b × subscribers per session): **a = ${round(a, 2)} ms per prompt whatever its`,
          `subscribers, b = ${round(b * 1000, 1)} µs per subscriber per prompt** (${round(writesPerSubscriber, 2)} socket writes per subscriber per prompt: ${round((b * 1000) / writesPerSubscriber, 1)} µs`,
          `per write, all-in); at ${maxS} subscribers per session the per-stream part is ${round(b * maxS, 2)} ms of ${round(a + b * maxS, 2)} ms. The loop's own`,
          `time per write (the "CPU / write" column: a clock around the loop, so preemption by the woken clients counts too) is`,
          `${split.map((p) => `${p.split!.usPerWrite} µs`).join(" / ")}.`
        )
      }
    }
    const rows = results.fanout as Array<PhaseResult>
    if (rows.length >= 2) {
      // The same fit for the user (utime) and system (stime) parts of the web's CPU: what grows with the subscribers in
      // user space (JavaScript, V8, libuv around each write) against in the kernel (the write syscall itself, and on
      // loopback the receiving client's TCP work, which runs inside the sender's syscall).
      const { total, user, system } = fits(rows, (p) => p.webCpuMsPerPrompt, (p) => p.webUserMsPerPrompt, (p) => p.webSystemMsPerPrompt)
      lines.push(
        "",
        "Web CPU per prompt by user / system time (/proc utime / stime of the web process), fit a + b × s (s = subscribers",
        "per session) over the rows:",
        "",
        "| subscribers / session | web CPU / prompt | user | system |",
        "|---|---|---|---|",
        ...rows.map((p) => `| ${p.subscribersPerSession} | ${p.webCpuMsPerPrompt} ms | ${p.webUserMsPerPrompt} ms | ${p.webSystemMsPerPrompt} ms |`),
        `| fit | ${fitCell(total)} | **${fitCell(user)}** | **${fitCell(system)}** |`
      )
    }
  }
  if (results.floor !== undefined) lines.push(...floorReport(results.fanout, results.floor))
  if (results.idle !== undefined) {
    const idle = results.idle
    lines.push(
      "",
      `Idle: \`cowork up\` (web + worker + scheduler), ${idle.streams} open session streams, ${idle.windowMs / 1000} s window scaled to a`,
      `minute: **${idle.statementsPerMinute} statements/min** (target ≤ 10). By statement:`,
      "",
      "| statements/min | statement |",
      "|---|---|",
      ...idle.byQuery.map((row: any) => `| ${row.perMinute} | \`${row.query.replace(/\|/g, "\\|")}\` |`)
    )
  }
  return [...lines, ""].join("\n")
}

const main = Effect.gen(function*() {
  const startMachine = machine()
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-bench-sse-"))
  Fs.chmodSync(dataDir, 0o755)
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
  const cluster = yield* startEmbeddedPostgres(Path.join(dataDir, "postgres"))
  yield* Database.ensureDatabase(cluster.url("postgres"), "bench")
  const url = cluster.url("bench")
  const database = Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "bench" })
  return yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).pipe(Effect.orDie)
    const results: any = { date: new Date().toISOString(), commit: gitHead(), machine: startMachine }
    if (PHASES.has("fanout")) results.fanout = yield* fanout(url, dataDir)
    if (PHASES.has("floor")) results.floor = yield* floorRows(results.fanout)
    if (PHASES.has("idle")) {
      console.error(`idle: cowork up with ${IDLE_STREAMS} streams, ${IDLE_WINDOW_MS / 1000} s window …`)
      // A fresh database for the all-in-one: the split roles' org is reused through its token.
      results.idle = yield* idle(url, dataDir)
    }
    results.loadAtEnd = Os.loadavg().map((n) => round(n, 2)).join(" / ")
    const markdown = report(results)
    console.log(JSON.stringify(results, null, 2))
    console.log(markdown)
    if (process.env.BENCH_NO_APPEND !== "1") {
      Fs.appendFileSync(Path.join(repoRoot, "docs/benchmarks.md"), `\n${markdown}`)
      console.error("appended to docs/benchmarks.md")
    }
  }).pipe(Effect.provide(Layer.orDie(database)))
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
