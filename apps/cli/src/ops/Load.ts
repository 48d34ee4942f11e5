import { openSse } from "@cowork/client"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { type FakeProvider, freePort as gatewayPort, LOOPBACK_WEBHOOKS, postInbound, provisionGateway, startFakeProvider, startGateway } from "./GatewayFleet.ts"
import { GATES, type Gate, loadTargets, type Profile } from "./LaunchValidate.ts"
import { generatorLoad, percentile, readPath, routeLatencies, routeOf } from "./LoadProbes.ts"
import { type LocalPostgres, startLocalPostgres } from "./LocalPostgres.ts"
import { postgresWaits, promptPhases } from "./PromptWaits.ts"
import { call, ensureDatabase, freePort, type Proc, query, runCowork, sleep, spawnCowork, waitFor, waitReady } from "./Procs.ts"

/**
 * `cowork load` / `cowork soak`: a profile of deploy/load/launch-readiness-targets.json driven against a split stack
 * this command starts (web, worker(s), scheduler as real processes on a Debian PostgreSQL with fsync on; scripted
 * runtime), measuring every gate:
 *
 * - storedThreads: sessions seeded up to the target (bulk SQL beyond the first 50 API-created ones), then listed
 *   and searched through the API while the load runs;
 * - sseStreams: the target number of SSE streams held open for the whole run; every stream must still be open and
 *   have received its session's events at the end;
 * - promptsPerMinute: prompts POSTed at the target rate, counted when acked within the window;
 * - activeWorkerSessions: the most sessions with a running command at once (sampled); prompts round-robin over enough
 *   API-created sessions that none waits behind its own session's previous one ([[slow:…]] replies hold a session
 *   for ~1 s), and the load org's concurrent-sessions quota raised;
 * - workflowRunsPerMinute: manual runs POSTed at the target rate, counted when completed;
 * - p95ReadMs / p95MutationMs / errorRate: every request the harness makes;
 * - projectionLagEvents / oldestCommandAgeSeconds: sampled from the database every second;
 * - gatewayMessagesPerMinute: a real `cowork gateway` process with a webhook provider whose target is a fake provider
 *   on loopback. Inbound: signed provider events POSTed to the gateway's /webhooks/hooks at 1.5x the target rate,
 *   spread over threads (each thread's first event creates its bound session); outbound: each reply to them is a
 *   delivery the gateway sends to the fake provider. Measured: inbound events accepted (202) per minute and distinct
 *   deliveries received per minute inside the window; the gate's figure is the smaller of the two ("each"). Delivery
 *   latency (delivery row created → first arrival at the provider) p50 / p95 in the traffic section.
 *
 * Also sampled: CPU and RSS of every role process, Postgres connections per application. Output: JSON + Markdown.
 */

export interface LoadOptions {
  readonly profile: Profile
  readonly durationMs: number
  readonly mode: "load" | "soak"
  readonly outputDir: string
  readonly reportName?: string | undefined
  readonly log?: (line: string) => void
}

type Verdict = "go" | "conditional-go" | "no-go"

interface GateResult {
  readonly gate: Gate
  readonly target: number
  readonly measured: number | null
  readonly direction: "min" | "max"
  readonly result: "pass" | "fail" | "skipped"
  readonly note: string
}

const round = (n: number, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n)

/** utime+stime (clock ticks) and RSS (bytes) of a pid from /proc; undefined when it is gone. */
const procStat = (pid: number | undefined) => {
  if (pid === undefined) return undefined
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const ticks = Number(fields[11]) + Number(fields[12])
    const rssPages = Number(fields[21])
    return { cpuSeconds: ticks / 100, rssBytes: rssPages * 4096 }
  } catch {
    return undefined
  }
}

/** Every load prompt's reply: 5 events (4 deltas and the message), the scripted runtime sleeping 200 ms before each. */
const PROMPT_DIRECTIVES = "[[slow:200]] [[events:4]]"
const PROMPT_REPLY_MS = 5 * 200

/** Prompts offered per minute: the throughput target, or enough to keep `activeWorkerSessions` busy with ~1 s replies. */
const promptsPerMinuteOffered = (targets: Record<Gate, number>) =>
  Math.max(targets.promptsPerMinute, Math.ceil((targets.activeWorkerSessions * 60_000) / PROMPT_REPLY_MS))

/**
 * Sessions the prompts are spread over, round-robin: a session runs one prompt at a time, so at `perMinute` each
 * session's next prompt must come after its reply (with 1.5x headroom), or prompts queue behind their session and
 * the run measures that queue instead of the workers' capacity.
 */
const promptSessionsNeeded = (perMinute: number) => Math.ceil((perMinute / 60_000) * PROMPT_REPLY_MS * 1.5)

export const runLoad = async (options: LoadOptions) => {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const root = Path.resolve(import.meta.dirname, "../../../..")
  const targets = loadTargets(root).profiles[options.profile]!.targets as Record<Gate, number>
  const startedAt = new Date()
  const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), `cowork-${options.mode}-`))
  Fs.chmodSync(work, 0o755)
  const procs: Array<Proc> = []
  let server: LocalPostgres | undefined
  let provider: FakeProvider | undefined
  const controllers: Array<AbortController> = []
  try {
    log(`${options.mode}: profile ${options.profile}, ${options.durationMs / 1000} s; starting PostgreSQL and the stack`)
    server = await startLocalPostgres(Path.join(work, "pg"), { durable: true, maxConnections: 400 })
    await ensureDatabase(server.url("postgres"), "cowork_load")
    const url = server.url("cowork_load")
    const workers = targets.activeWorkerSessions > 8 ? 2 : 1
    const concurrency = Math.max(4, Math.ceil((targets.activeWorkerSessions * 1.5) / workers))
    const env = {
      OPEN_COWORK_DATA_DIR: Path.join(work, "data"),
      OPEN_COWORK_DATABASE_URL: url,
      OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: String(targets.sseStreams + 100),
      OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "100000000",
      OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "100000000",
      OPEN_COWORK_CLOUD_QUOTA_PROMPTS_PER_HOUR: "100000000",
      OPEN_COWORK_CLOUD_QUOTA_QUEUED_COMMANDS: "100000000",
      // One org carries the whole profile: its default of 100 sessions at work would cap activeWorkerSessions itself.
      OPEN_COWORK_CLOUD_QUOTA_CONCURRENT_SESSIONS: "100000000",
      // The load's own volume (public-beta: 40 runs and ~900 deliveries a minute) would pass the hourly defaults.
      OPEN_COWORK_CLOUD_QUOTA_WORKFLOW_RUNS_PER_HOUR: "100000000",
      OPEN_COWORK_CLOUD_QUOTA_CHANNEL_DELIVERIES_PER_HOUR: "100000000"
    }
    Fs.mkdirSync(env.OPEN_COWORK_DATA_DIR, { recursive: true })
    const migrated = await runCowork(["migrate"], env)
    if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`)
    const issued = await runCowork(["admin", "token", "create", "--scopes", "web,admin,operator", "--name", "load"], env)
    const token = issued.stdout.trim().split("\n").at(-1)!.trim()
    const serving = { ...env, OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false" }
    const webPort = await freePort()
    const web = spawnCowork("web", ["web"], { ...serving, ...LOOPBACK_WEBHOOKS, OPEN_COWORK_CLOUD_PORT: String(webPort) })
    procs.push(web)
    const base = `http://127.0.0.1:${webPort}`
    await waitReady(web, base)
    for (let i = 1; i <= workers; i++) {
      const port = await freePort()
      const worker = spawnCowork(`worker-${i}`, ["worker"], {
        ...serving,
        OPEN_COWORK_CLOUD_WORKER_ID: `load-worker-${i}`,
        OPEN_COWORK_CLOUD_WORKER_CONCURRENCY: String(concurrency),
        OPEN_COWORK_CLOUD_LIVENESS_PORT: String(port)
      })
      procs.push(worker)
      await waitReady(worker, `http://127.0.0.1:${port}`)
    }
    const schedulerPort = await freePort()
    const scheduler = spawnCowork("scheduler", ["scheduler"], { ...serving, OPEN_COWORK_CLOUD_LIVENESS_PORT: String(schedulerPort) })
    procs.push(scheduler)
    await waitReady(scheduler, `http://127.0.0.1:${schedulerPort}`)
    // The gateway: a webhook binding at the fake provider, a gateway token for it, one `cowork gateway` process.
    provider = await startFakeProvider()
    const grant = await provisionGateway(base, token, provider.url)
    const gwPort = await gatewayPort()
    procs.push(await startGateway("gateway", grant, { cloudUrl: base, port: gwPort, gatewayId: "load-gateway", concurrency: 16 }))

    // ---- request accounting -------------------------------------------------------------------------------------
    const reads: Array<number> = []
    const readRoutes = routeLatencies()
    const mutationRoutes = routeLatencies()
    const mutations: Array<number> = []
    let requests = 0
    let errors = 0
    const errorSamples: Array<string> = []
    const timed = async (kind: "read" | "mutation", method: string, path: string, body?: unknown) => {
      const t0 = performance.now()
      requests++
      try {
        const r = await call(base, token, method, path, body)
        const ms = performance.now() - t0
        ;(kind === "read" ? reads : mutations).push(ms)
        ;(kind === "read" ? readRoutes : mutationRoutes).record(routeOf(method, path), ms)
        if (r.status >= 500) {
          errors++
          if (errorSamples.length < 5) errorSamples.push(`${method} ${path.replace(/[a-z]+_[0-9a-z]+/g, ":id")} → ${r.status}`)
        }
        return r
      } catch (error) {
        errors++
        if (errorSamples.length < 5) errorSamples.push(`${method} ${path.replace(/[a-z]+_[0-9a-z]+/g, ":id")} → ${String(error).slice(0, 80)}`)
        return { status: 0, body: undefined as any, headers: new Headers() }
      }
    }

    // ---- seed stored threads --------------------------------------------------------------------------------------
    log(`${options.mode}: seeding ${targets.storedThreads} stored threads`)
    const promptRate = promptsPerMinuteOffered(targets)
    const apiSessions = Math.min(targets.storedThreads, Math.max(50, promptSessionsNeeded(promptRate)))
    const sessions: Array<string> = []
    for (let i = 0; i < apiSessions; i++) {
      const r = await timed("mutation", "POST", "/api/sessions", { title: `load thread ${i}` })
      if (r.status === 201) sessions.push(r.body.session.id)
    }
    const org = (await query<{ org_id: string }>(url, "SELECT org_id FROM cloud_sessions LIMIT 1"))[0]!.org_id
    const bulk = targets.storedThreads - apiSessions
    if (bulk > 0) {
      await query(url, `WITH s AS (
          INSERT INTO cloud_sessions (id, org_id, title) SELECT 'ses_load' || g || '${Crypto.randomBytes(3).toString("hex")}', $1, 'stored thread ' || g
          FROM generate_series(1, $2) g RETURNING id)
        INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) SELECT id, $1, 0 FROM s`, [org, bulk])
    }
    const storedThreads = Number((await query<{ n: string }>(url, "SELECT count(*) AS n FROM cloud_sessions"))[0]!.n)

    // ---- SSE fan-out ------------------------------------------------------------------------------------------------
    log(`${options.mode}: opening ${targets.sseStreams} SSE streams`)
    const streamFrames: Array<number> = new Array(targets.sseStreams).fill(0)
    const streamOpen: Array<boolean> = new Array(targets.sseStreams).fill(false)
    await Promise.all(Array.from({ length: targets.sseStreams }, async (_, i) => {
      const controller = new AbortController()
      controllers.push(controller)
      const sessionId = sessions[i % sessions.length]!
      try {
        const stream = await openSse(`${base}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${token}` }, controller.signal, (frame) => {
          if (frame.id !== undefined) streamFrames[i]!++
        })
        streamOpen[i] = true
        void stream.ended.then(() => {
          streamOpen[i] = false
        })
      } catch {
        errors++
      }
    }))

    // ---- workflow -----------------------------------------------------------------------------------------------------
    const workflow = await timed("mutation", "POST", "/api/workflows", {
      title: "load workflow", instructions: "[[events:2]] load run", agentName: "build", triggers: [{ type: "manual", enabled: true }], overlapPolicy: "allow"
    })
    const workflowId = workflow.body?.workflow?.id as string

    // ---- samplers ---------------------------------------------------------------------------------------------------
    let running = true
    const samples: Array<{ t: number; activeSessions: number; lag: number; oldestAge: number; connections: number; procs: Record<string, { cpu: number; rssMb: number }> }> = []
    const cpuStart = new Map(procs.map((p) => [p.name, procStat(p.child.pid)?.cpuSeconds ?? 0]))
    const waits = postgresWaits(url)
    const sampler = (async () => {
      while (running) {
        const t = Date.now()
        const [active, lag, oldest, conns] = await Promise.all([
          query<{ n: string }>(url, "SELECT count(DISTINCT session_id) AS n FROM cloud_session_commands WHERE status = 'running'"),
          query<{ m: string | null }>(url, "SELECT max(last_sequence - projected_sequence) AS m FROM cloud_session_projections"),
          query<{ s: number | null }>(url, "SELECT extract(epoch FROM now() - min(created_at))::float8 AS s FROM cloud_session_commands WHERE status = 'pending'"),
          query<{ n: string }>(url, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'cowork_load'")
        ]).catch(() => [[{ n: "0" }], [{ m: "0" }], [{ s: 0 }], [{ n: "0" }]] as const)
        await waits.sample().catch(() => undefined)
        const procSample: Record<string, { cpu: number; rssMb: number }> = {}
        for (const p of procs) {
          const s = procStat(p.child.pid)
          if (s !== undefined) procSample[p.name] = { cpu: s.cpuSeconds, rssMb: round(s.rssBytes / 1024 / 1024) }
        }
        samples.push({
          t,
          activeSessions: Number((active[0] as any).n),
          lag: Number((lag[0] as any).m ?? 0),
          oldestAge: Number((oldest[0] as any).s ?? 0),
          connections: Number((conns[0] as any).n),
          procs: procSample
        })
        await sleep(1_000 - (Date.now() - t))
      }
    })()

    // ---- drivers ----------------------------------------------------------------------------------------------------
    log(`${options.mode}: driving traffic`)
    const windowStart = new Date()
    const generator = generatorLoad()
    const deadline = Date.now() + options.durationMs
    const promptIds: Array<string> = []
    let promptsRefused = 0
    const runIds: Array<string> = []
    const paced = async (perMinute: number, task: (i: number) => Promise<void>) => {
      const interval = 60_000 / perMinute
      const t0 = Date.now()
      const inflight: Array<Promise<void>> = []
      for (let i = 0; Date.now() < deadline; i++) {
        await sleep(t0 + i * interval - Date.now())
        if (Date.now() >= deadline) break
        inflight.push(task(i))
      }
      await Promise.all(inflight)
    }
    // Prompts: round-robin over the API sessions, enough of them that no prompt queues behind its session's last.
    const promptDriver = paced(promptRate, async (i) => {
      const sessionId = sessions[i % sessions.length]!
      const r = await timed("mutation", "POST", `/api/sessions/${sessionId}/prompt`, { text: `${PROMPT_DIRECTIVES} load ${i}` })
      if (r.status === 202) promptIds.push(r.body.commandId)
      else if (r.status === 429) promptsRefused++
    })
    // Offered at twice the target: the gate is a capacity, and a run finishing just after the window must not decide it.
    const workflowDriver = paced(targets.workflowRunsPerMinute * 2, async () => {
      const r = await timed("mutation", "POST", `/api/workflows/${workflowId}/run`)
      if (r.status === 202) runIds.push(r.body.run.id)
    })
    // Gateway inbound at 1.5x the target over enough threads that no session queues; each reply is a delivery.
    const gatewayRate = targets.gatewayMessagesPerMinute * 1.5
    const gatewayThreads = Math.max(10, Math.ceil(gatewayRate / 30))
    let inboundPosted = 0
    let inboundAccepted = 0
    let inboundAcceptedInWindow = 0
    const inboundDriver = paced(gatewayRate, async (i) => {
      requests++
      inboundPosted++
      const status = await postInbound(gwPort, grant.inboundSecret, {
        eventId: `load-in-${i}`, bindingId: grant.bindingId, threadId: `load-thread-${i % gatewayThreads}`, text: `load inbound ${i}`
      })
      if (status === 202) {
        inboundAccepted++
        if (Date.now() <= deadline) inboundAcceptedInWindow++
      } else {
        errors++
        if (errorSamples.length < 5) errorSamples.push(`POST gateway /webhooks/hooks → ${status}`)
      }
    })
    const artifactDriver = paced(30, async (i) => {
      const sessionId = sessions[i % sessions.length]!
      const up = await timed("mutation", "POST", `/api/sessions/${sessionId}/artifacts`, {
        filename: `load-${i}.bin`, contentType: "application/octet-stream", dataBase64: Crypto.randomBytes(16_384).toString("base64")
      })
      if (up.status === 201) await timed("read", "GET", `/api/sessions/${sessionId}/artifacts/${up.body.artifact.id}`)
    })
    const readers = Array.from({ length: 4 }, async (_, r) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const sessionId = sessions[(i + r) % sessions.length]!
        await timed("read", "GET", readPath(i, sessionId))
        await sleep(50)
      }
    })
    await Promise.all([promptDriver, workflowDriver, inboundDriver, artifactDriver, ...readers])
    const windowEnd = new Date()
    const generatorSaturation = generator.stop()
    const windowMinutes = (windowEnd.getTime() - windowStart.getTime()) / 60_000
    // Let the queue drain (bounded), then count what completed inside the window.
    await waitFor("queue to drain", async () => {
      const rows = await query<{ n: string }>(url, "SELECT count(*) AS n FROM cloud_session_commands WHERE status IN ('pending','running')")
      return Number(rows[0]!.n) === 0 ? true : undefined
    }, 60_000, 250).catch(() => undefined)
    running = false
    await sampler

    const ackedInWindow = Number((await query<{ n: string }>(url,
      "SELECT count(*) AS n FROM cloud_session_commands WHERE id = ANY($1::text[]) AND status = 'acked' AND completed_at <= $2",
      [promptIds, windowEnd.toISOString()]))[0]!.n)
    const ackedTotal = Number((await query<{ n: string }>(url,
      "SELECT count(*) AS n FROM cloud_session_commands WHERE id = ANY($1::text[]) AND status = 'acked'", [promptIds]))[0]!.n)
    const prompts = await promptPhases(url, promptIds)
    const runsCompleted = Number((await query<{ n: string }>(url,
      "SELECT count(*) AS n FROM cloud_workflow_runs WHERE id = ANY($1::text[]) AND status = 'completed' AND finished_at <= $2",
      [runIds, windowEnd.toISOString()]))[0]!.n)
    // Outbound: the deliveries made, received by the provider inside the window (first arrival per key), and latency.
    await waitFor("the gateway's deliveries to reach the provider", async () => {
      const rows = await query<{ n: string }>(url, "SELECT count(*) AS n FROM cloud_channel_deliveries WHERE status <> 'sent'")
      return Number(rows[0]!.n) === 0 ? true : undefined
    }, 30_000, 250).catch(() => undefined)
    const deliveryRows = await query<{ k: string; created: string; status: string }>(url,
      "SELECT idempotency_key AS k, (extract(epoch FROM created_at) * 1000)::float8 AS created, status FROM cloud_channel_deliveries")
    const deliveredInWindow = deliveryRows.filter((d) => (provider!.firstAt.get(d.k) ?? Infinity) <= windowEnd.getTime()).length
    const deliveryLatencies = deliveryRows.flatMap((d) => {
      const at = provider!.firstAt.get(d.k)
      return at === undefined ? [] : [Math.max(0, at - Number(d.created))]
    })
    const gatewayIn = round(inboundAcceptedInWindow / windowMinutes)
    const gatewayOut = round(deliveredInWindow / windowMinutes)
    const openStreams = streamOpen.filter(Boolean).length
    const streamsWithEvents = streamFrames.filter((n) => n > 0).length
    for (const controller of controllers) controller.abort()

    const measured: Record<Gate, number | null> = {
      sseStreams: Math.min(openStreams, streamsWithEvents),
      storedThreads,
      promptsPerMinute: round(ackedInWindow / windowMinutes),
      activeWorkerSessions: Math.max(0, ...samples.map((s) => s.activeSessions)),
      workflowRunsPerMinute: round(runsCompleted / windowMinutes),
      gatewayMessagesPerMinute: Math.min(gatewayIn, gatewayOut),
      p95ReadMs: round(percentile(reads, 95)),
      p95MutationMs: round(percentile(mutations, 95)),
      projectionLagEvents: Math.max(0, ...samples.map((s) => s.lag)),
      oldestCommandAgeSeconds: round(Math.max(0, ...samples.map((s) => s.oldestAge))),
      errorRate: requests === 0 ? 1 : round(errors / requests, 4)
    }
    const gates: Array<GateResult> = (Object.keys(GATES) as Array<Gate>).map((gate) => {
      const target = targets[gate]
      const value = measured[gate]
      const direction = GATES[gate]
      if (value === null) {
        return { gate, target, measured: null, direction, result: "skipped", note: "not measured by this harness" }
      }
      const pass = direction === "min" ? value >= target : value <= target
      const note = gate === "gatewayMessagesPerMinute"
        ? `in ${gatewayIn}/min, out ${gatewayOut}/min; delivery latency p95 ${round(percentile(deliveryLatencies, 95), 0)} ms`
        : ""
      return { gate, target, measured: value, direction, result: pass ? "pass" : "fail", note }
    })
    const decision: Verdict = gates.some((g) => g.result === "fail") ? "no-go" : gates.some((g) => g.result === "skipped") ? "conditional-go" : "go"
    const procSummary: Record<string, { cpuPercent: number; rssStartMb: number; rssEndMb: number; rssMaxMb: number }> = {}
    const durationS = (windowEnd.getTime() - windowStart.getTime()) / 1000
    for (const p of procs) {
      const series = samples.map((s) => s.procs[p.name]).filter((x) => x !== undefined)
      if (series.length === 0) continue
      procSummary[p.name] = {
        cpuPercent: round(((series.at(-1)!.cpu - (cpuStart.get(p.name) ?? 0)) / durationS) * 100),
        rssStartMb: series[0]!.rssMb,
        rssEndMb: series.at(-1)!.rssMb,
        rssMaxMb: Math.max(...series.map((s) => s.rssMb))
      }
    }
    const commit = (() => {
      try {
        return ChildProcess.execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
      } catch {
        return "unknown"
      }
    })()
    const report = {
      command: `cowork ${options.mode} --profile ${options.profile} --duration-ms ${options.durationMs}`,
      mode: options.mode,
      profile: options.profile,
      decision,
      commit,
      imageDigest: "none (run from the source checkout; no image built on this machine)",
      startedAt: startedAt.toISOString(),
      window: { start: windowStart.toISOString(), end: windowEnd.toISOString(), seconds: round(durationS) },
      environment: {
        stack: `web x1, worker x${workers} (concurrency ${concurrency} each), scheduler x1, gateway x1 as real processes; scripted runtime; file object store; the gateway's webhook provider posts to a fake provider on loopback`,
        postgres: `PostgreSQL ${server.version} (Debian, started by the harness, fsync on)`,
        host: `${Os.type()} ${Os.arch()}, ${Os.cpus().length} CPU (${Os.cpus()[0]?.model ?? "?"}), ${round(Os.totalmem() / 1024 ** 3)} GiB; load average at start ${Os.loadavg().map((n) => round(n, 2)).join(" / ")}; Node ${process.version}`
      },
      gates,
      traffic: {
        requests,
        errors,
        errorSamples,
        reads: reads.length,
        mutations: mutations.length,
        promptsSent: promptIds.length,
        promptsRefused,
        promptSessions: sessions.length,
        promptQueuedMs: prompts.queued,
        promptRunningMs: prompts.running,
        promptsAcked: ackedTotal,
        promptsAckedInWindow: ackedInWindow,
        workflowRunsStarted: runIds.length,
        workflowRunsCompletedInWindow: runsCompleted,
        sseStreamsOpened: targets.sseStreams,
        sseStreamsOpenAtEnd: openStreams,
        sseFramesReceived: streamFrames.reduce((a, b) => a + b, 0),
        gatewayInboundPosted: inboundPosted,
        gatewayInboundAccepted: inboundAccepted,
        gatewayInboundPerMinute: gatewayIn,
        gatewayDeliveries: deliveryRows.length,
        gatewayDeliveriesSent: deliveryRows.filter((d) => d.status === "sent").length,
        gatewayDeliveriesReceived: provider.firstAt.size,
        gatewayDeliveryRawPosts: provider.arrivals.length,
        gatewayOutboundPerMinute: gatewayOut,
        gatewayDeliveryLatencyP50Ms: round(percentile(deliveryLatencies, 50), 0),
        gatewayDeliveryLatencyP95Ms: round(percentile(deliveryLatencies, 95), 0),
        p50ReadMs: round(percentile(reads, 50)),
        p50MutationMs: round(percentile(mutations, 50)),
        readsByRoute: readRoutes.summary(),
        mutationsByRoute: mutationRoutes.summary()
      },
      postgresWaits: waits.summary(),
      generator: generatorSaturation,
      processes: procSummary,
      postgresConnections: { max: Math.max(0, ...samples.map((s) => s.connections)), end: samples.at(-1)?.connections ?? 0 },
      trend: samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 10)) === 0).map((s) => ({
        t: round((s.t - windowStart.getTime()) / 1000, 0), activeSessions: s.activeSessions, lag: s.lag, oldestAge: round(s.oldestAge), connections: s.connections,
        rssMb: Object.fromEntries(Object.entries(s.procs).map(([k, v]) => [k, v.rssMb]))
      }))
    }
    Fs.mkdirSync(options.outputDir, { recursive: true })
    const name = options.reportName ?? `${options.mode}-${options.profile}`
    const jsonPath = Path.join(options.outputDir, `${name}.json`)
    const mdPath = Path.join(options.outputDir, `${name}.md`)
    Fs.writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`)
    Fs.writeFileSync(mdPath, renderLoadReport(report))
    return { report, jsonPath, mdPath }
  } catch (error) {
    for (const proc of procs) process.stderr.write(`--- ${proc.name} (tail) ---\n${proc.output().slice(-2_000)}\n`)
    throw error
  } finally {
    for (const controller of controllers) controller.abort()
    await Promise.all(procs.map((proc) => proc.stop(20_000)))
    await provider?.close()
    if (server !== undefined) await server.stop()
    Fs.rmSync(work, { recursive: true, force: true })
  }
}

type LoadReport = Awaited<ReturnType<typeof runLoad>>["report"]

const AREA: Record<Gate, string> = {
  sseStreams: "SSE fan-out: streams held open and receiving",
  storedThreads: "stored threads listed / searched",
  promptsPerMinute: "session prompt throughput (acked in window)",
  activeWorkerSessions: "worker sessions running at once",
  workflowRunsPerMinute: "workflow runs completed",
  gatewayMessagesPerMinute: "gateway inbound / outbound",
  p95ReadMs: "Cloud Web reads, p95",
  p95MutationMs: "mutations (create, prompt, upload, run), p95",
  projectionLagEvents: "projection lag, max",
  oldestCommandAgeSeconds: "oldest pending command, max",
  errorRate: "error rate (5xx + network)"
}

/** Mutations per route, where the prompts waited (mailbox vs reply) and what the roles' Postgres connections waited on. */
const promptWaitLines = (r: LoadReport): Array<string> => [
  "Mutations by route (including the sessions the harness creates before the window):",
  "",
  "| route | requests | p50 ms | p95 ms |",
  "|---|---|---|---|",
  ...r.traffic.mutationsByRoute.map((x) => `| \`${x.route}\` | ${x.count} | ${x.p50Ms} | ${x.p95Ms} |`),
  "",
  `Prompts: ${r.traffic.promptsSent} accepted and ${r.traffic.promptsRefused} refused (429) over ${r.traffic.promptSessions} sessions; acked prompts waited in the mailbox (created → started by a worker) p50 ${r.traffic.promptQueuedMs.p50Ms} / p95 ${r.traffic.promptQueuedMs.p95Ms} / max ${r.traffic.promptQueuedMs.maxMs} ms, and ran (started → acked) p50 ${r.traffic.promptRunningMs.p50Ms} / p95 ${r.traffic.promptRunningMs.p95Ms} / max ${r.traffic.promptRunningMs.maxMs} ms.`,
  "",
  "Postgres: what the roles' active connections waited on (sampled once a second; CPU = not waiting):",
  "",
  "| application wait | active per sample | statement seen most |",
  "|---|---|---|",
  ...r.postgresWaits.map((w) => `| ${w.wait} | ${w.activePerSample} | \`${w.statement.replaceAll("|", "\\|")}\` |`),
  ""
]

/** The per-route read latencies and the load generator's own event-loop delay and CPU, for the report. */
const readsByRouteLines = (r: LoadReport): Array<string> => [
  "Reads by route (the harness's read mix):",
  "",
  "| route | requests | p50 ms | p95 ms |",
  "|---|---|---|---|",
  ...r.traffic.readsByRoute.map((x) => `| \`${x.route}\` | ${x.count} | ${x.p50Ms} | ${x.p95Ms} |`),
  "",
  `Load generator (this process, also the SSE client of every stream): event-loop delay p50 ${r.generator.eventLoopDelayP50Ms} ms, p99 ${r.generator.eventLoopDelayP99Ms} ms, max ${r.generator.eventLoopDelayMaxMs} ms; CPU ${r.generator.cpuUserPercent} % user + ${r.generator.cpuSystemPercent} % system of one core over the window.`,
  ""
]

/** Markdown in the launch-readiness report template's structure (docs/launch/launch-readiness-report-template.md). */
const renderLoadReport = (r: LoadReport): string => [
  `# Launch readiness report — ${r.profile} — ${r.startedAt.slice(0, 10)}`,
  "",
  `Generated by \`${r.command}\` (apps/cli/src/ops/Load.ts); every figure below is measured by that run. JSON beside this file.`,
  "",
  "## Release candidate",
  "",
  `- Environment: local split stack started by the harness — ${r.environment.stack}; ${r.environment.postgres}`,
  `- Host: ${r.environment.host}`,
  "- Cloud URL / Gateway URL: loopback, ephemeral ports (one `cowork gateway`; its webhook provider's target is a fake provider on loopback)",
  `- Commit SHA: ${r.commit}`,
  `- Image tag / digest: ${r.imageDigest}`,
  `- Primary command(s): \`${r.command}\``,
  "- Sanitised environment profile: rate limits and prompt / queued-command / concurrent-session quotas raised for the single load token's org; SSE per-org cap = target + 100",
  `- Target profile: ${r.profile} (deploy/load/launch-readiness-targets.json)`,
  "- Accepted launch tier: local-self-host-beta (deploy/load/launch-evidence-matrix.json)",
  `- Window: ${r.window.start} → ${r.window.end} (${r.window.seconds} s)`,
  "",
  "## Go / no-go",
  "",
  `- Decision: **${r.decision}**`,
  `- Why: ${r.gates.filter((g) => g.result === "fail").map((g) => `${g.gate} failed`).join(", ") || "every measured gate passed"}${r.gates.some((g) => g.result === "skipped") ? `; skipped: ${r.gates.filter((g) => g.result === "skipped").map((g) => g.gate).join(", ")} (a skipped gate caps the decision at conditional-go)` : ""}`,
  `- Claims explicitly not made: hosted tiers (private-beta and above); gateway capacity against real provider APIs (the provider here is a loopback fake that answers at once)`,
  "",
  "## Load test report",
  "",
  "| area | gate | target | measured | result |",
  "|---|---|---|---|---|",
  ...r.gates.map((g) => `| ${AREA[g.gate]} | ${g.gate} | ${g.direction === "min" ? "≥" : "≤"} ${g.target} | ${g.measured ?? "—"} | ${g.result}${g.note === "" ? "" : ` (${g.note})`} |`),
  "",
  `Traffic: ${r.traffic.requests} requests (${r.traffic.reads} reads, ${r.traffic.mutations} mutations), ${r.traffic.errors} errors${r.traffic.errorSamples.length > 0 ? ` (e.g. ${r.traffic.errorSamples.join("; ")})` : ""};`,
  `p50 read ${r.traffic.p50ReadMs} ms, p50 mutation ${r.traffic.p50MutationMs} ms; prompts sent ${r.traffic.promptsSent}, acked ${r.traffic.promptsAcked} (${r.traffic.promptsAckedInWindow} inside the window);`,
  `workflow runs started ${r.traffic.workflowRunsStarted}, completed in window ${r.traffic.workflowRunsCompletedInWindow}; SSE streams ${r.traffic.sseStreamsOpenAtEnd}/${r.traffic.sseStreamsOpened} open at the end, ${r.traffic.sseFramesReceived} frames received;`,
  `gateway: ${r.traffic.gatewayInboundPosted} inbound events posted, ${r.traffic.gatewayInboundAccepted} accepted (${r.traffic.gatewayInboundPerMinute}/min in the window); ${r.traffic.gatewayDeliveries} deliveries (${r.traffic.gatewayDeliveriesSent} sent), ${r.traffic.gatewayDeliveriesReceived} distinct keys at the provider in ${r.traffic.gatewayDeliveryRawPosts} posts (${r.traffic.gatewayOutboundPerMinute}/min in the window); delivery latency (row created → provider) p50 ${r.traffic.gatewayDeliveryLatencyP50Ms} ms, p95 ${r.traffic.gatewayDeliveryLatencyP95Ms} ms.`,
  "",
  ...promptWaitLines(r),
  ...readsByRouteLines(r),
  "## Soak test report",
  "",
  r.mode === "soak"
    ? `- Duration ${r.window.seconds} s; max error rate ${r.gates.find((g) => g.gate === "errorRate")!.measured}; p95 read ${r.gates.find((g) => g.gate === "p95ReadMs")!.measured} ms; p95 mutation ${r.gates.find((g) => g.gate === "p95MutationMs")!.measured} ms; max oldest command age ${r.gates.find((g) => g.gate === "oldestCommandAgeSeconds")!.measured} s; max projection lag ${r.gates.find((g) => g.gate === "projectionLagEvents")!.measured}`
    : "- Not a soak run (`cowork soak --profile … --duration-ms …` runs the same harness for longer; trend below).",
  "",
  "| t (s) | running sessions | projection lag | oldest pending (s) | Postgres connections | RSS MB per process |",
  "|---|---|---|---|---|---|",
  ...r.trend.map((s) => `| ${s.t} | ${s.activeSessions} | ${s.lag} | ${s.oldestAge} | ${s.connections} | ${Object.entries(s.rssMb).map(([k, v]) => `${k} ${v}`).join(", ")} |`),
  "",
  "## Failover and recovery evidence",
  "",
  "- `cowork drill failover`: docs/runbooks/failover-drill-report.md",
  "",
  "## Restore and backup evidence",
  "",
  "- `cowork drill restore`: docs/runbooks/restore-drill-report.md",
  "",
  "## Security boundary evidence",
  "",
  "- The tests named under securityBoundaries in deploy/load/launch-evidence-matrix.json (run by `npm test`).",
  "",
  "## Cost and scaling notes",
  "",
  "| process | CPU (% of one core, window average) | RSS start → end (max) MB |",
  "|---|---|---|",
  ...Object.entries(r.processes).map(([name, p]) => `| ${name} | ${p.cpuPercent} | ${p.rssStartMb} → ${p.rssEndMb} (${p.rssMaxMb}) |`),
  "",
  `Postgres connections: max ${r.postgresConnections.max}, at the end ${r.postgresConnections.end}.`,
  "",
  "## Known limits",
  "",
  "- One machine runs the stack, Postgres and the load generator together: figures are a floor for this host, not a capacity plan.",
  "- The scripted runtime stands in for a model: worker figures exclude model latency and provider quotas.",
  "- The gateway's provider is a fake webhook receiver on loopback that answers at once: gateway figures exclude real provider latency and rate limits.",
  "",
  "## Findings",
  "",
  "| finding | evidence | disposition | follow-up | tier impact |",
  "|---|---|---|---|---|",
  ...r.gates.filter((g) => g.result !== "pass").map((g) => `| ${g.gate} ${g.result} | measured ${g.measured ?? "—"} vs ${g.target} | ${g.result === "skipped" ? "tier-scoped-out-of-scope" : "narrow-follow-up-issue"} | ${g.result === "skipped" ? "measure it in the harness" : "investigate"} | caps ${r.profile} at ${g.result === "skipped" ? "conditional-go" : "no-go"} |`),
  ""
].join("\n")

