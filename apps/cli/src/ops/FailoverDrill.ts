import { openSse } from "@cowork/client"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { bindSession, deliverInbound, type FakeProvider, LOOPBACK_WEBHOOKS, provisionGateway, startFakeProvider, startGateway } from "./GatewayFleet.ts"
import { type LocalPostgres, startLocalPostgres } from "./LocalPostgres.ts"
import { call, ensureDatabase, freePort, type Proc, query, runCowork, sleep, spawnCowork, waitFor, waitReady } from "./Procs.ts"

/**
 * `cowork drill failover`: web x2, worker x2, scheduler x2, gateway x2 as real processes on one PostgreSQL (a Debian
 * server the drill starts, so it can restart it) and one S3 object store behind a TCP proxy the drill can cut (the
 * operator's S3 / MinIO when `objectStore` is given, else the dev S3 server `s3rver`), driven by clients while faults
 * are injected one after another:
 *
 *   SIGKILL worker · SIGTERM worker · SIGKILL web · SIGTERM web · SIGKILL scheduler · SIGTERM scheduler ·
 *   SIGKILL gateway · SIGTERM gateway · Postgres restart · object-store outage
 *
 * Clients: prompt senders with idempotency keys that fail over between the two webs, one SSE client per session that
 * resumes on the other web with Last-Event-ID, a workflow due every 2 s; every session is bound to a webhook channel
 * binding, so each reply is a delivery the gateways send to a fake provider on loopback; and a provider posting a
 * signed inbound event every second to both gateways at once (retried while neither accepts it). Each fault's time
 * to recover is measured with a probe (see `Fault.recovery`). At the end, from the database and the clients: no
 * accepted prompt lost, none acked twice, every session's sequence contiguous, no workflow slot fired twice, every SSE
 * client saw every event once in order, every delivery reached the provider exactly once after dedup by idempotency
 * key (raw duplicates reported), none left claimed, every inbound event prompted once.
 */

/** An S3-compatible store of the operator's (OPEN_COWORK_OBJECT_STORE_* settings), used instead of the dev s3rver. */
export interface DrillObjectStore {
  /** `s3://bucket/prefix`: the drill writes under `<prefix>/failover-drill-<random>`. */
  readonly uri: string
  /** `http://host:port`: the drill's TCP proxy (the outage) sits in front of it. */
  readonly endpoint: string
  readonly accessKeyId?: string | undefined
  readonly secretAccessKey?: string | undefined
  readonly region?: string | undefined
  readonly forcePathStyle?: boolean | undefined
}

export interface FailoverDrillOptions {
  readonly reportPath?: string | undefined
  readonly sessions?: number | undefined
  readonly objectStore?: DrillObjectStore | undefined
  readonly log?: (line: string) => void
}

/** What `cowork drill failover` says when it has no S3 to use. */
const NO_S3_MESSAGE = "the failover drill needs an S3-compatible object store it can cut: set OPEN_COWORK_OBJECT_STORE_URI=s3://bucket/prefix " +
  "and OPEN_COWORK_OBJECT_STORE_ENDPOINT=http://host:port (plus OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID / _SECRET_ACCESS_KEY, e.g. the Compose MinIO), " +
  "or install the dev S3 server the source checkout uses: npm install --no-save s3rver@3.7.1"

/** The endpoint's host and port, for the proxy; only plain http (a TLS endpoint's certificate would not match the proxy's address). */
const endpointTarget = (endpoint: string) => {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new Error(`OPEN_COWORK_OBJECT_STORE_ENDPOINT is not a URL: ${endpoint}`)
  }
  if (url.protocol !== "http:") throw new Error("the failover drill cuts the object store with a TCP proxy: OPEN_COWORK_OBJECT_STORE_ENDPOINT must be http://host:port")
  return { host: url.hostname, port: Number(url.port === "" ? 80 : url.port) }
}

interface FaultResult {
  readonly fault: string
  readonly target: string
  readonly recovery: string
  readonly timeToRecoverMs: number | null
  readonly ok: boolean
  readonly detail: string
}

interface InvariantResult {
  readonly invariant: string
  readonly ok: boolean
  readonly detail: string
}

export interface FailoverDrillReport {
  readonly ok: boolean
  readonly startedAt: string
  readonly durationMs: number
  readonly environment: Record<string, string>
  readonly traffic: Record<string, number>
  readonly faults: ReadonlyArray<FaultResult>
  readonly invariants: ReadonlyArray<InvariantResult>
  readonly notCovered: ReadonlyArray<string>
}

/** A TCP proxy in front of the object store: `cut()` refuses and drops every connection until `restore()`. */
const makeProxy = async (targetHost: string, targetPort: number) => {
  let cut = false
  const sockets = new Set<Net.Socket>()
  const server = Net.createServer((client) => {
    if (cut) return client.destroy()
    const upstream = Net.connect(targetPort, targetHost)
    sockets.add(client)
    sockets.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("error", drop).on("close", drop)
    upstream.on("error", drop).on("close", drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
  return {
    port,
    cut: () => {
      cut = true
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    },
    restore: () => {
      cut = false
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  }
}

export const runFailoverDrill = async (options: FailoverDrillOptions = {}): Promise<FailoverDrillReport> => {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const started = Date.now()
  const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-failover-drill-"))
  Fs.chmodSync(work, 0o755)
  const procs = new Map<string, Proc>()
  let server: LocalPostgres | undefined
  let s3: any
  let proxy: Awaited<ReturnType<typeof makeProxy>> | undefined
  let provider: FakeProvider | undefined
  const sseControllers: Array<AbortController> = []
  let stopTraffic = false
  try {
    // The object store: the operator's S3 / MinIO when given, else s3rver (a devDependency: the local S3 the storage
    // tests use, absent from a production install), loaded only here. Either way behind a proxy the drill can cut.
    let storeEnv: Record<string, string>
    let storeName: string
    if (options.objectStore !== undefined) {
      const given = options.objectStore
      const target = endpointTarget(given.endpoint)
      log(`failover drill: PostgreSQL, S3 store ${given.endpoint} behind a proxy`)
      proxy = await makeProxy(target.host, target.port)
      storeName = `the operator's S3 (${target.host}:${target.port}, OPEN_COWORK_OBJECT_STORE_*)`
      storeEnv = {
        OPEN_COWORK_OBJECT_STORE_URI: `${given.uri.replace(/\/+$/, "")}/failover-drill-${Crypto.randomBytes(4).toString("hex")}`,
        OPEN_COWORK_OBJECT_STORE_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        OPEN_COWORK_OBJECT_STORE_FORCE_PATH_STYLE: String(given.forcePathStyle ?? true),
        ...(given.region === undefined ? {} : { OPEN_COWORK_OBJECT_STORE_REGION: given.region }),
        ...(given.accessKeyId === undefined ? {} : { OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID: given.accessKeyId }),
        ...(given.secretAccessKey === undefined ? {} : { OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY: given.secretAccessKey })
      }
    } else {
      const s3rverName = "s3rver"
      const S3rver = (await import(s3rverName).catch(() => {
        throw new Error(NO_S3_MESSAGE)
      })).default
      log("failover drill: PostgreSQL, S3 store (s3rver behind a proxy)")
      s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: Path.join(work, "s3"), configureBuckets: [{ name: "cowork-drill" }] })
      const s3Address = await s3.run()
      proxy = await makeProxy("127.0.0.1", s3Address.port)
      storeName = "s3rver (the dev S3 server)"
      storeEnv = {
        OPEN_COWORK_OBJECT_STORE_URI: "s3://cowork-drill/failover",
        OPEN_COWORK_OBJECT_STORE_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        OPEN_COWORK_OBJECT_STORE_FORCE_PATH_STYLE: "true",
        OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID: "S3RVER",
        OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY: "S3RVER"
      }
    }
    server = await startLocalPostgres(Path.join(work, "pg"))
    const db = "cowork_failover"
    await ensureDatabase(server.url("postgres"), db)
    const url = server.url(db)
    const env = {
      OPEN_COWORK_DATA_DIR: Path.join(work, "data"),
      OPEN_COWORK_DATABASE_URL: url,
      ...storeEnv,
      OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "1000000",
      OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "1000000"
    }
    Fs.mkdirSync(env.OPEN_COWORK_DATA_DIR, { recursive: true })
    const must = async (what: string, r: Promise<{ code: number; stdout: string; stderr: string }>) => {
      const out = await r
      if (out.code !== 0) throw new Error(`${what} failed: ${out.stderr}`)
      return out
    }
    await must("migrate", runCowork(["migrate"], env))
    const token = (await must("token", runCowork(["admin", "token", "create", "--scopes", "web,admin,operator", "--name", "failover-drill"], env)))
      .stdout.trim().split("\n").at(-1)!.trim()

    const ports: Record<string, number> = {}
    const serving = { ...env, OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false" }
    const roleEnv = (name: string): Record<string, string> => {
      if (name.startsWith("web")) return { ...serving, ...LOOPBACK_WEBHOOKS, OPEN_COWORK_CLOUD_PORT: String(ports[name]), OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: "5000" }
      return {
        ...serving,
        OPEN_COWORK_CLOUD_LIVENESS_PORT: String(ports[name]),
        OPEN_COWORK_CLOUD_WORKER_ID: name,
        OPEN_COWORK_CLOUD_LEASE_TTL_MS: "3000",
        OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: "5000",
        OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500",
        OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "300",
        OPEN_COWORK_CLOUD_SCHEDULER_TICK_MS: "200"
      }
    }
    let grant: Awaited<ReturnType<typeof provisionGateway>> | undefined
    const start = async (name: string) => {
      ports[name] ??= await freePort()
      const role = name.replace(/-\d$/, "")
      if (role === "gateway") {
        // gateway-N talks to web-N (a gateway has one cloud URL; in production a load balancer in front of the webs).
        const proc = await startGateway(name, grant!, {
          cloudUrl: `http://127.0.0.1:${ports[name.replace("gateway", "web")]}`,
          port: ports[name]!,
          gatewayId: name,
          claimTtlMs: 3_000,
          pollIntervalMs: 300,
          shutdownGraceMs: 5_000
        })
        procs.set(name, proc)
        return proc
      }
      const proc = spawnCowork(name, [role], roleEnv(name))
      procs.set(name, proc)
      await waitReady(proc, `http://127.0.0.1:${ports[name]}`)
      return proc
    }
    // Ports first (one at a time, so no two roles draw the same), then the webs, then every other role at once.
    for (const name of ["web-1", "web-2", "worker-1", "worker-2", "scheduler-1", "scheduler-2", "gateway-1", "gateway-2"]) ports[name] = await freePort()
    log("failover drill: starting web x2")
    await Promise.all(["web-1", "web-2"].map((name) => start(name)))
    const webs = () => ["web-1", "web-2"].map((n) => `http://127.0.0.1:${ports[n]}`)
    // The fake provider (answers after 100 ms, so a gateway holds claims while it sends), a webhook binding at it, and
    // two gateways sharing one gateway token.
    provider = await startFakeProvider(100)
    grant = await provisionGateway(webs()[0]!, token, provider.url)
    log("failover drill: starting worker x2, scheduler x2, gateway x2")
    await Promise.all(["worker-1", "worker-2", "scheduler-1", "scheduler-2", "gateway-1", "gateway-2"].map((name) => start(name)))
    const gatewayPorts = () => ["gateway-1", "gateway-2"].map((n) => ports[n]!)

    // ---- clients -------------------------------------------------------------------------------------------
    /** One request, failing over to the other web on a network error or a 5xx (same idempotency key). */
    const request = async (method: string, path: string, body?: unknown) => {
      let last: unknown
      for (let attempt = 0; attempt < 40; attempt++) {
        const base = webs()[attempt % 2]!
        try {
          const r = await call(base, token, method, path, body)
          if (r.status < 500) return r
          last = new Error(`HTTP ${r.status}`)
        } catch (error) {
          last = error
        }
        await sleep(attempt < 2 ? 0 : 250)
      }
      throw new Error(`${method} ${path} failed on both webs: ${String(last)}`)
    }
    const sessionCount = options.sessions ?? 6
    const sessionIds: Array<string> = []
    for (let i = 0; i < sessionCount; i++) sessionIds.push((await request("POST", "/api/sessions", { title: `failover ${i}` })).body.session.id)
    // Every session bound to the provider's thread `thread-<i>`: each of its replies is a delivery.
    for (const [i, id] of sessionIds.entries()) await bindSession(webs()[0]!, token, grant.bindingId, `thread-${i}`, id)

    // SSE: one client per session, resuming on the other web with Last-Event-ID.
    const seen = new Map<string, Array<number>>()
    const reconnects = new Map<string, number>()
    const connectedAt = new Map<string, number>()
    const connectedTo = new Map<string, string>()
    const sseLoop = async (sessionId: string, index: number) => {
      const received: Array<number> = []
      seen.set(sessionId, received)
      let attempt = index
      while (!stopTraffic) {
        const base = webs()[attempt % 2]!
        attempt++
        const controller = new AbortController()
        sseControllers.push(controller)
        try {
          const last = received.at(-1)
          const stream = await openSse(`${base}/api/sessions/${sessionId}/events`, {
            authorization: `Bearer ${token}`,
            ...(last === undefined ? {} : { "last-event-id": String(last) })
          }, controller.signal, (frame) => {
            if (frame.id !== undefined) received.push(Number(frame.id))
          })
          connectedAt.set(sessionId, Date.now())
          connectedTo.set(sessionId, base)
          await stream.ended
        } catch {
          // refused / reset: try the other web
        }
        if (stopTraffic) break
        reconnects.set(sessionId, (reconnects.get(sessionId) ?? 0) + 1)
        await sleep(100)
      }
    }
    const sseDone = sessionIds.map((id, i) => sseLoop(id, i))

    // Prompts: a steady trickle with idempotency keys; every accepted one is recorded.
    const accepted = new Map<string, { sessionId: string; commandId: string }>()
    let promptErrors = 0
    let promptsSent = 0
    const promptOnce = async (sessionId: string, label: string) => {
      const key = `${label}-${Crypto.randomUUID()}`
      promptsSent++
      const r = await request("POST", `/api/sessions/${sessionId}/prompt`, { text: `[[events:2]] ${label}`, idempotencyKey: key })
      if (r.status === 202) {
        accepted.set(key, { sessionId, commandId: r.body.commandId })
        return r.body.commandId as string
      }
      promptErrors++
      return undefined
    }
    const promptLoop = (async () => {
      let i = 0
      while (!stopTraffic) {
        await promptOnce(sessionIds[i % sessionIds.length]!, `load-${i}`).catch(() => {
          promptErrors++
        })
        i++
        await sleep(250)
      }
    })()

    // Inbound: one provider event a second, to a bound thread, posted to both gateways at once and retried while
    // neither accepts it (as a provider retries a non-2xx).
    const inboundEvents: Array<string> = []
    let inboundPosts = 0
    let inboundErrors = 0
    const inboundLoop = (async () => {
      for (let n = 0; !stopTraffic; n++) {
        const eventId = `failover-in-${n}`
        const accepted = await deliverInbound(gatewayPorts, grant.inboundSecret, {
          eventId, bindingId: grant.bindingId, threadId: `thread-${n % sessionIds.length}`, text: `[[events:2]] inbound ${n}`
        }).catch(() => undefined)
        if (accepted === undefined) inboundErrors++
        else {
          inboundEvents.push(eventId)
          inboundPosts += accepted.posts
        }
        await sleep(1_000)
      }
    })()

    const workflow = (await request("POST", "/api/workflows", {
      title: "failover every 2 s",
      instructions: "tick",
      agentName: "build",
      triggers: [{ type: "schedule", enabled: true, schedule: { type: "cron", expression: "*/2 * * * * *", timezone: "UTC" } }],
      overlapPolicy: "allow"
    })).body.workflow.id as string

    const ackedAt = async (commandId: string, timeoutMs = 90_000) =>
      waitFor(`command ${commandId} acked`, async () => {
        const rows = await query<{ status: string }>(url, "SELECT status FROM cloud_session_commands WHERE id = $1", [commandId])
        return rows[0]?.status === "acked" ? Date.now() : undefined
      }, timeoutMs, 100)
    const probePrompt = async (sessionId: string, faultAt: number) => {
      const commandId = await waitFor("probe prompt accepted", () => promptOnce(sessionId, "probe"), 90_000, 200)
      return (await ackedAt(commandId)) - faultAt
    }
    const sessionHeldBy = async (worker: string) => {
      const rows = await query<{ session_id: string }>(url,
        "SELECT session_id FROM cloud_worker_leases WHERE worker_id = $1 AND expires_at > now() LIMIT 1", [worker])
      return rows[0]?.session_id
    }
    const nextSlotRun = async (after: number) =>
      waitFor("the next scheduled slot run", async () => {
        const rows = await query<{ n: string }>(url,
          "SELECT count(*) AS n FROM cloud_workflow_runs WHERE workflow_id = $1 AND created_at > to_timestamp($2 / 1000.0)", [workflow, after])
        return Number(rows[0]!.n) > 0 ? Date.now() : undefined
      }, 60_000, 100)

    // Warm-up: traffic flowing, every SSE client connected, a slot fired.
    await waitFor("SSE clients connected", async () => (connectedAt.size === sessionIds.length ? true : undefined), 30_000)
    await nextSlotRun(Date.now())
    await sleep(1_500)

    const faults: Array<FaultResult> = []
    /** `run` answers the time to recover, or it with a detail for the report. */
    const measure = async (fault: string, target: string, recovery: string, run: () => Promise<number | { ms: number; detail: string }>) => {
      log(`failover drill: ${fault} ${target}`)
      try {
        const result = await run()
        const { ms, detail } = typeof result === "number" ? { ms: result, detail: "" } : result
        faults.push({ fault, target, recovery, timeToRecoverMs: Math.round(ms), ok: true, detail })
      } catch (error) {
        faults.push({ fault, target, recovery, timeToRecoverMs: null, ok: false, detail: String(error).slice(0, 500) })
      }
      await sleep(1_000)
    }

    for (const [worker, signal] of [["worker-1", "SIGKILL"], ["worker-2", "SIGTERM"]] as const) {
      await measure(signal, worker, "a prompt to a session this worker held is acked (lease expiry or release → other worker claims)", async () => {
        const held = await waitFor(`a lease held by ${worker}`, () => sessionHeldBy(worker), 20_000, 50).catch(() => sessionIds[0]!)
        const at = Date.now()
        await procs.get(worker)!.kill(signal)
        const ms = await probePrompt(held, at)
        await start(worker)
        return ms
      })
    }
    for (const [web, signal] of [["web-1", "SIGKILL"], ["web-2", "SIGTERM"]] as const) {
      await measure(signal, web, "every SSE client is streaming again (resumed on the other web) and a prompt through the clients is acked", async () => {
        const killedBase = `http://127.0.0.1:${ports[web]}`
        const affected = sessionIds.filter((id) => connectedTo.get(id) === killedBase)
        const at = Date.now()
        await procs.get(web)!.kill(signal)
        const ms = await probePrompt(sessionIds[1]!, at)
        await waitFor(`the ${affected.length} SSE clients of ${web} to resume on the other web`, async () =>
          affected.every((id) => (connectedAt.get(id) ?? 0) > at) ? true : undefined, 30_000, 50)
        const resumed = Math.max(0, ...affected.map((id) => connectedAt.get(id)! - at))
        await start(web)
        return Math.max(ms, resumed)
      })
    }
    for (const [scheduler, signal] of [["scheduler-1", "SIGKILL"], ["scheduler-2", "SIGTERM"]] as const) {
      await measure(signal, scheduler, "the next due slot is claimed and its run created by the remaining scheduler", async () => {
        const at = Date.now()
        await procs.get(scheduler)!.kill(signal)
        const ms = (await nextSlotRun(at)) - at
        await start(scheduler)
        return ms
      })
    }
    let gatewayRestart: Promise<unknown> = Promise.resolve()
    const deliveryKeys = async () =>
      (await query<{ k: string }>(url, "SELECT idempotency_key AS k FROM cloud_channel_deliveries")).map((r) => r.k)
    for (const [gateway, signal] of [["gateway-1", "SIGKILL"], ["gateway-2", "SIGTERM"]] as const) {
      await measure(signal, gateway, "every delivery not yet sent at the fault (its claims included) is sent and at the provider; a reply produced after the fault is delivered too (the other gateway takes over)", async () => {
        // Killed while it holds claims (the provider answers after 100 ms, so there usually are some).
        const held = await waitFor(`a delivery claimed by ${gateway}`, async () => {
          const rows = await query<{ n: string }>(url,
            "SELECT count(*) AS n FROM cloud_channel_deliveries WHERE status = 'claimed' AND last_claimed_replica = $1", [gateway])
          return Number(rows[0]!.n) > 0 ? Number(rows[0]!.n) : undefined
        }, 10_000, 20).catch(() => 0)
        const outstanding = (await query<{ k: string }>(url, "SELECT idempotency_key AS k FROM cloud_channel_deliveries WHERE status <> 'sent'")).map((r) => r.k)
        const at = Date.now()
        await procs.get(gateway)!.kill(signal)
        // A reply produced after the fault (its delivery row is written with the reply, before the ack).
        await probePrompt(sessionIds[0]!, at)
        const later = await query<{ k: string; created: number }>(url,
          "SELECT idempotency_key AS k, (extract(epoch FROM created_at) * 1000)::float8 AS created FROM cloud_channel_deliveries WHERE created_at > to_timestamp($1 / 1000.0)", [at])
        const waited = [...new Set([...outstanding, ...later.map((r) => r.k)])]
        const done = await waitFor(`the ${waited.length} deliveries outstanding at or made after the fault to be sent and at the provider`, async () => {
          const rows = await query<{ k: string; status: string; sent: number | null }>(url,
            "SELECT idempotency_key AS k, status, (extract(epoch FROM sent_at) * 1000)::float8 AS sent FROM cloud_channel_deliveries WHERE idempotency_key = ANY($1::text[])", [waited])
          return rows.length === waited.length && rows.every((r) => r.status === "sent" && provider!.firstAt.has(r.k)) ? rows : undefined
        }, 60_000, 100)
        const wasOutstanding = new Set(outstanding)
        const recoveredAt = Math.max(at, ...done.filter((r) => wasOutstanding.has(r.k)).map((r) => Math.max(Number(r.sent), provider!.firstAt.get(r.k)!)))
        const newLatency = Math.max(0, ...later.map((r) => provider!.firstAt.get(r.k)! - Number(r.created)))
        // gateway-1 must be back before gateway-2 goes; gateway-2's restart runs on during the faults that follow.
        if (gateway === "gateway-1") await start(gateway)
        else gatewayRestart = start(gateway)
        return {
          ms: recoveredAt - at,
          detail: `${held} deliveries claimed by ${gateway} and ${outstanding.length} not yet sent just before the ${signal}, all sent since; ` +
            `${later.length} made after it, at the provider within ${Math.round(newLatency)} ms of their creation`
        }
      })
    }
    await measure("restart", "Postgres (fast shutdown, 3 s down)", "a new prompt is accepted and acked after Postgres is back (measured from the restart)", async () => {
      await server!.stop()
      await sleep(3_000)
      await server!.start()
      const at = Date.now()
      return probePrompt(sessionIds[2]!, at)
    })
    await measure("outage", "object store (connections refused for 5 s)", "an artifact upload succeeds and a prompt is acked after the store is back (measured from the end of the outage)", async () => {
      proxy!.cut()
      await promptOnce(sessionIds[3]!, "during-outage").catch(() => undefined)
      await sleep(5_000)
      proxy!.restore()
      const at = Date.now()
      await waitFor("an artifact upload", async () => {
        const r = await call(webs()[0]!, token, "POST", `/api/sessions/${sessionIds[3]}/artifacts`, {
          filename: "probe.txt", contentType: "text/plain", dataBase64: Buffer.from("probe").toString("base64")
        }).catch(() => undefined)
        return r?.status === 201 ? true : undefined
      }, 60_000, 100)
      return probePrompt(sessionIds[3]!, at)
    })

    // ---- drain and check -------------------------------------------------------------------------------------
    log("failover drill: draining traffic and checking invariants")
    await gatewayRestart
    stopTraffic = true
    await promptLoop
    await inboundLoop
    await waitFor("every accepted command to finish", async () => {
      const rows = await query<{ n: string }>(url, "SELECT count(*) AS n FROM cloud_session_commands WHERE status IN ('pending','running')")
      return Number(rows[0]!.n) === 0 ? true : undefined
    }, 120_000, 250).catch(() => undefined)
    await request("POST", `/api/workflows/${workflow}/pause`)
    // SSE clients catch up with the log before they are closed.
    const logTail = async (sessionId: string) =>
      Number((await query<{ m: string | null }>(url, "SELECT max(sequence) AS m FROM cloud_session_events WHERE session_id = $1", [sessionId]))[0]!.m ?? 0)
    const tails: Record<string, number> = {}
    for (const id of sessionIds) tails[id] = await logTail(id)
    await waitFor("SSE clients at the log's tail", async () => (sessionIds.every((id) => (seen.get(id)?.at(-1) ?? 0) >= tails[id]!) ? true : undefined), 30_000, 100)
      .catch(() => undefined)
    for (const controller of sseControllers) controller.abort()
    await Promise.all(sseDone)

    const invariants: Array<InvariantResult> = []
    const check = (invariant: string, ok: boolean, detail: string) => invariants.push({ invariant, ok, detail })
    const commandIds = [...accepted.values()].map((a) => a.commandId)
    const rows = await query<{ id: string; status: string }>(url, "SELECT id, status FROM cloud_session_commands WHERE id = ANY($1::text[])", [commandIds])
    const byStatus: Record<string, number> = {}
    for (const row of rows) byStatus[row.status] = (byStatus[row.status] ?? 0) + 1
    check("no accepted prompt lost: every 202 has its command row, and every one finished acked",
      rows.length === commandIds.length && (byStatus.acked ?? 0) === commandIds.length,
      `${commandIds.length} accepted, ${rows.length} rows, statuses ${JSON.stringify(byStatus)}`)
    const distinctCommands = new Set(commandIds).size
    check("idempotency: a retried POST (same key, other web) never made a second command", distinctCommands === commandIds.length,
      `${commandIds.length} keys → ${distinctCommands} commands`)
    const acks = await query<{ command_id: string; n: string }>(url,
      `SELECT payload->>'commandId' AS command_id, count(*) AS n FROM cloud_session_events
       WHERE type = 'session.idle' AND payload->>'outcome' = 'acked' AND payload->>'commandId' = ANY($1::text[]) GROUP BY 1`, [commandIds])
    const twice = acks.filter((a) => Number(a.n) > 1).length
    check("no command acked twice: exactly one session.idle (outcome acked) per accepted command in the log",
      twice === 0 && acks.length === commandIds.length, `${acks.length} of ${commandIds.length} commands acked in the log, ${twice} more than once`)
    const gaps = await query<{ session_id: string; n: string; m: string }>(url,
      `SELECT session_id, count(*) AS n, max(sequence) AS m FROM cloud_session_events GROUP BY session_id HAVING count(*) <> max(sequence) OR min(sequence) <> 1`)
    check("every session's event sequence is contiguous (1..n, no gap, no duplicate)", gaps.length === 0, `${gaps.length} sessions with a gap`)
    const doubleSlots = await query<{ n: string }>(url,
      `SELECT count(*) AS n FROM (SELECT workflow_id, scheduled_for FROM cloud_workflow_runs WHERE scheduled_for IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d`)
    const slots = await query<{ n: string }>(url, "SELECT count(*) AS n FROM cloud_workflow_runs WHERE workflow_id = $1", [workflow])
    check("no workflow slot fired twice", Number(doubleSlots[0]!.n) === 0, `${slots[0]!.n} slot runs, ${doubleSlots[0]!.n} duplicated`)
    const sseProblems: Array<string> = []
    for (const id of sessionIds) {
      const got = seen.get(id) ?? []
      const expected = tails[id]!
      const ok = got.length === expected && got.every((s, i) => s === i + 1)
      if (!ok) sseProblems.push(`${id}: ${got.length} frames for ${expected} events`)
    }
    const totalReconnects = [...reconnects.values()].reduce((a, b) => a + b, 0)
    check("every SSE client saw every event once, in order, across its reconnects (Last-Event-ID)", sseProblems.length === 0,
      sseProblems.length === 0 ? `${sessionIds.length} clients, ${totalReconnects} reconnects` : sseProblems.join("; "))

    // Deliveries: every row sent, every key at the provider, exactly once after dedup.
    await waitFor("every delivery sent and received", async () => {
      const open = await query<{ n: string }>(url, "SELECT count(*) AS n FROM cloud_channel_deliveries WHERE status <> 'sent'")
      const keys = await deliveryKeys()
      return Number(open[0]!.n) === 0 && keys.every((k) => provider!.firstAt.has(k)) ? true : undefined
    }, 60_000, 250).catch(() => undefined)
    const deliveries = await query<{ k: string; status: string; attempts: number }>(url,
      "SELECT idempotency_key AS k, status, attempts FROM cloud_channel_deliveries")
    const rowKeys = new Set(deliveries.map((d) => d.k))
    const missing = deliveries.filter((d) => !provider!.firstAt.has(d.k)).length
    const strays = [...provider.firstAt.keys()].filter((k) => !rowKeys.has(k)).length
    const rawDuplicates = provider.arrivals.length - provider.firstAt.size
    const maxAttempts = Math.max(0, ...deliveries.map((d) => Number(d.attempts)))
    check("every delivery reached the provider at least once, and exactly once after dedup by idempotency key",
      deliveries.length > 0 && missing === 0 && strays === 0,
      `${deliveries.length} deliveries, ${provider.firstAt.size} distinct keys received, ${provider.arrivals.length} raw posts (${rawDuplicates} raw duplicates), ${missing} missing, ${strays} unknown keys, max attempts ${maxAttempts}`)
    const deliveryStatus: Record<string, number> = {}
    for (const d of deliveries) deliveryStatus[d.status] = (deliveryStatus[d.status] ?? 0) + 1
    check("no delivery left claimed (or failed / dead) at the end", (deliveryStatus.sent ?? 0) === deliveries.length, `statuses ${JSON.stringify(deliveryStatus)}`)
    const prompted = await query<{ k: string; n: string }>(url,
      "SELECT idempotency_key AS k, count(*) AS n FROM cloud_session_commands WHERE idempotency_key = ANY($1::text[]) GROUP BY 1", [inboundEvents])
    const notOnce = inboundEvents.length - prompted.filter((p) => Number(p.n) === 1).length
    check("every inbound provider event (posted to both gateways, retried while refused) prompted exactly once",
      inboundEvents.length > 0 && notOnce === 0 && inboundErrors === 0,
      `${inboundEvents.length} events accepted in ${inboundPosts} posts, ${notOnce} not prompted exactly once, ${inboundErrors} never accepted`)

    const ok = faults.every((f) => f.ok) && invariants.every((i) => i.ok)
    const report: FailoverDrillReport = {
      ok,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      environment: {
        roles: "web x2, worker x2, scheduler x2, gateway x2 (real processes; gateway-N talks to web-N)",
        postgres: `PostgreSQL ${server.version} (Debian, started by the drill)`,
        objectStore: `S3 protocol: ${storeName}, behind a TCP proxy the drill cuts`,
        channel: "one webhook binding at a fake provider on loopback (answers after 100 ms); every session bound to it; signed inbound events",
        settings: "lease TTL 3 s, shutdown grace 5 s (every role), heartbeat 0.5 s, poll 0.3 s, scheduler tick 0.2 s, gateway claim TTL 3 s and poll 0.3 s",
        host: `${Os.type()} ${Os.arch()}, ${Os.cpus().length} CPU, Node ${process.version}`
      },
      traffic: {
        sessions: sessionIds.length,
        promptsSent,
        promptsAccepted: accepted.size,
        promptErrors,
        sseReconnects: totalReconnects,
        workflowSlotRuns: Number(slots[0]!.n),
        deliveries: deliveries.length,
        deliveryPostsReceived: provider.arrivals.length,
        deliveryRawDuplicates: rawDuplicates,
        inboundEvents: inboundEvents.length,
        inboundPosts
      },
      faults,
      invariants,
      notCovered: [
        "real provider APIs (Telegram, Slack, email): the gateways use the webhook provider against a fake on loopback; the other providers are covered by packages/channels and apps/gateway tests with their own fakes",
        "BYOK reveal failure: the scripted runtime reveals no key (covered by the worker tests, not this drill)"
      ]
    }
    if (options.reportPath !== undefined) {
      Fs.mkdirSync(Path.dirname(options.reportPath), { recursive: true })
      Fs.writeFileSync(options.reportPath, renderFailoverReport(report))
      Fs.writeFileSync(options.reportPath.replace(/\.md$/, ".json"), `${JSON.stringify(report, null, 2)}\n`)
    }
    return report
  } catch (error) {
    for (const proc of procs.values()) process.stderr.write(`--- ${proc.name} (tail) ---\n${proc.output().slice(-2_000)}\n`)
    throw error
  } finally {
    stopTraffic = true
    for (const controller of sseControllers) controller.abort()
    await Promise.all([...procs.values()].map((proc) => proc.kill("SIGKILL")))
    await proxy?.close()
    await provider?.close()
    if (s3 !== undefined) {
      s3.httpServer?.closeAllConnections?.()
      await s3.close().catch(() => undefined)
    }
    if (server !== undefined) await server.stop()
    Fs.rmSync(work, { recursive: true, force: true })
  }
}

const renderFailoverReport = (r: FailoverDrillReport): string => [
  "# Failover drill report",
  "",
  "Written by `cowork drill failover` (apps/cli/src/ops/FailoverDrill.ts) from the run below; rerun it to refresh.",
  "",
  `- Result: **${r.ok ? "pass" : "FAIL"}**; ${r.startedAt}; ${(r.durationMs / 1000).toFixed(0)} s`,
  ...Object.entries(r.environment).map(([k, v]) => `- ${k}: ${v}`),
  `- Traffic: ${Object.entries(r.traffic).map(([k, v]) => `${k} ${v}`).join(", ")}`,
  "",
  "## Faults and time to recover",
  "",
  "| fault | target | recovered when | time to recover | result |",
  "|---|---|---|---|---|",
  ...r.faults.map((f) => `| ${f.fault} | ${f.target} | ${f.recovery} | ${f.timeToRecoverMs === null ? "—" : `${f.timeToRecoverMs} ms`} | ${f.ok ? `pass${f.detail === "" ? "" : ` (${f.detail})`}` : `FAIL: ${f.detail.replaceAll("|", "\\|")}`} |`),
  "",
  "## Invariants (from the database and the clients, after the faults)",
  "",
  "| invariant | result | detail |",
  "|---|---|---|",
  ...r.invariants.map((i) => `| ${i.invariant} | ${i.ok ? "pass" : "FAIL"} | ${i.detail.replaceAll("|", "\\|")} |`),
  "",
  "## Not covered by this run",
  "",
  ...r.notCovered.map((n) => `- ${n}`),
  ""
].join("\n")
