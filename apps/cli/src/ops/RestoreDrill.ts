import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Manifest, RestoreResult } from "./BackupRestore.ts"
import { bindSession, type FakeProvider, type GatewayGrant, LOOPBACK_WEBHOOKS, postInbound, provisionGateway, startFakeProvider, startGateway } from "./GatewayFleet.ts"
import { type LocalPostgres, startLocalPostgres } from "./LocalPostgres.ts"
import { findProgram, withDatabase } from "./PgTools.ts"
import { call, ensureDatabase, freePort, type Proc, query, runCowork, spawnCowork, waitFor, waitReady } from "./Procs.ts"

/**
 * `cowork drill restore`: the backup/restore runbook run for real, end to end, with real processes.
 *
 * 1. A source stack (web, worker, scheduler, gateway) on a fresh database; seeded through the HTTP API: sessions with
 *    prompts (events, projections, checkpoints in the object store), artifacts, workflows and a workflow run, a BYOK
 *    key; a webhook channel binding at a fake provider with two sessions bound to it, their replies delivered by the
 *    gateway, one inbound provider event; then the gateway stopped and more replies left as pending deliveries.
 * 2. Worker and scheduler stopped; `cowork backup` while web still serves (an online backup).
 * 3. `cowork restore` refused while a worker is attached to the target; then restored into a NEW database and a NEW
 *    object store.
 * 4. Web alone on the restored data: health, workspace, diagnostics, metrics, and every session view, artifact
 *    (bytes by sha256), workflow, run count and BYOK metadata compared with the source.
 * 5. One worker: a smoke prompt on a restored session (sequence continues without a gap, a new checkpoint is written).
 * 6. Scheduler: a due workflow slot is claimed and runs once; the restored workflows did not fire again.
 * 6b. Gateway last (runbook "Restore Check"): the deliveries pending at the backup arrive at the provider once each,
 *    the ones sent before it are not sent again, and the inbound event posted again is a duplicate (no new prompt).
 * 7. The report (docs/runbooks/restore-drill-report.md by default): counts before/after per table, smoke results,
 *    exclusions.
 *
 * Postgres: a Debian PostgreSQL server this drill starts itself (initdb in a temp dir; `postgresql-15`), since the
 * embedded 18 has no pg_dump; or the server of OPEN_COWORK_DRILL_DATABASE_URL.
 */

export interface RestoreDrillOptions {
  /** A server URL (any database on it) to use instead of starting a local one. */
  readonly serverUrl?: string | undefined
  readonly reportPath?: string | undefined
  readonly sessions?: number | undefined
  readonly log?: (line: string) => void
}

interface Check {
  readonly check: string
  readonly ok: boolean
  readonly detail: string
}

export interface RestoreDrillReport {
  readonly ok: boolean
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationMs: number
  readonly environment: { readonly name: string; readonly postgres: string; readonly objectStore: string; readonly node: string; readonly host: string }
  readonly source: { readonly database: string; readonly backupCreatedAt: string }
  readonly target: { readonly database: string; readonly restoredAt: string; readonly restoreMs: number; readonly backupMs: number }
  readonly backup: {
    readonly dumpBytes: number
    readonly dumpSha256: string
    readonly pgDump: string
    readonly objects: number
    readonly objectBytes: number
    readonly listingSha256: string
  }
  readonly secretRefs: string
  readonly tables: Record<string, { readonly before: number; readonly after: number }>
  readonly runbookCounts: ReadonlyArray<{ readonly what: string; readonly before: number | string; readonly after: number | string }>
  readonly refusal: Check
  readonly checks: ReadonlyArray<Check>
  readonly excluded: ReadonlyArray<string>
  readonly followUps: ReadonlyArray<string>
}

const sha256 = (bytes: Uint8Array) => Crypto.createHash("sha256").update(bytes).digest("hex")

const stableView = (view: unknown) => JSON.stringify(view)

export const runRestoreDrill = async (options: RestoreDrillOptions = {}): Promise<RestoreDrillReport> => {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const started = Date.now()
  const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-restore-drill-"))
  Fs.chmodSync(work, 0o755)
  const procs: Array<Proc> = []
  let server: LocalPostgres | undefined
  let provider: FakeProvider | undefined
  try {
    let serverUrl: string
    let postgresLabel: string
    if (options.serverUrl !== undefined && options.serverUrl !== "") {
      serverUrl = withDatabase(options.serverUrl, "postgres")
      const rows = await query<{ v: string }>(serverUrl, "SELECT current_setting('server_version') AS v")
      postgresLabel = `PostgreSQL ${rows[0]!.v} (OPEN_COWORK_DRILL_DATABASE_URL)`
    } else {
      log("restore drill: starting a local PostgreSQL server (initdb in a temp dir)")
      server = await startLocalPostgres(Path.join(work, "pg"))
      serverUrl = server.url("postgres")
      postgresLabel = `PostgreSQL ${server.version} (Debian package, started by the drill: initdb in a temp dir, loopback only)`
    }
    const suffix = Crypto.randomBytes(4).toString("hex")
    const sourceDb = `cowork_drill_source_${suffix}`
    const targetDb = `cowork_drill_restored_${suffix}`
    const sourceUrl = withDatabase(serverUrl, sourceDb)
    const targetUrl = withDatabase(serverUrl, targetDb)
    await ensureDatabase(serverUrl, sourceDb)

    // One data dir: the local key file in it plays the secret manager both stacks read (never part of a backup).
    const dataDir = Path.join(work, "data")
    Fs.mkdirSync(dataDir, { recursive: true })
    const sourceStore = `file://${Path.join(work, "source-objects")}`
    const targetStore = `file://${Path.join(work, "restored-objects")}`
    const backupDir = Path.join(work, "backup")
    const base = { OPEN_COWORK_DATA_DIR: dataDir }
    const sourceEnv = { ...base, OPEN_COWORK_DATABASE_URL: sourceUrl, OPEN_COWORK_OBJECT_STORE_URI: sourceStore }
    const targetEnv = { ...base, OPEN_COWORK_DATABASE_URL: targetUrl, OPEN_COWORK_OBJECT_STORE_URI: targetStore }
    const fast = { OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "300", OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500" }

    const must = async (what: string, result: Promise<{ code: number; stdout: string; stderr: string }>) => {
      const r = await result
      if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
      return r
    }
    await must("cowork migrate", runCowork(["migrate"], sourceEnv))
    const issued = await must("cowork admin token create", runCowork(["admin", "token", "create", "--scopes", "web,admin,operator", "--name", "restore-drill"], sourceEnv))
    const token = issued.stdout.trim().split("\n").at(-1)!.trim()

    const startWeb = async (name: string, env: Record<string, string>) => {
      const port = await freePort()
      const proc = spawnCowork(name, ["web"], { ...env, ...LOOPBACK_WEBHOOKS, OPEN_COWORK_CLOUD_PORT: String(port) })
      procs.push(proc)
      const baseUrl = `http://127.0.0.1:${port}`
      await waitReady(proc, baseUrl)
      return { proc, baseUrl }
    }
    const startRole = async (name: string, role: "worker" | "scheduler", env: Record<string, string>) => {
      const port = await freePort()
      const proc = spawnCowork(name, [role], {
        ...env,
        ...fast,
        OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
        OPEN_COWORK_CLOUD_LIVENESS_PORT: String(port),
        OPEN_COWORK_CLOUD_WORKER_ID: name,
        ...(role === "scheduler" ? { OPEN_COWORK_CLOUD_SCHEDULER_TICK_MS: "200" } : {})
      })
      procs.push(proc)
      await waitReady(proc, `http://127.0.0.1:${port}`)
      return proc
    }

    // ---- 1. source stack, seeded through the API ------------------------------------------------------------
    log("restore drill: source stack (web, worker, scheduler) and seed data")
    const srcWeb = await startWeb("source-web", sourceEnv)
    const srcWorker = await startRole("source-worker", "worker", sourceEnv)
    const srcScheduler = await startRole("source-scheduler", "scheduler", sourceEnv)
    const api = (baseUrl: string) => ({
      get: (path: string) => call(baseUrl, token, "GET", path),
      post: (path: string, body?: unknown) => call(baseUrl, token, "POST", path, body ?? {})
    })
    const src = api(srcWeb.baseUrl)
    const expect = async (what: string, response: Promise<{ status: number; body: any }>, status: number) => {
      const r = await response
      if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    }
    // A webhook binding at the fake provider and a gateway for it; the first two sessions are bound to threads.
    provider = await startFakeProvider()
    const grant: GatewayGrant = await provisionGateway(srcWeb.baseUrl, token, provider.url)
    const gatewaySettings = async (cloudUrl: string, gatewayId: string) => ({ cloudUrl, port: await freePort(), gatewayId, claimTtlMs: 3_000, pollIntervalMs: 300 })
    const srcGatewaySettings = await gatewaySettings(srcWeb.baseUrl, "source-gateway")
    const srcGateway = await startGateway("source-gateway", grant, srcGatewaySettings)
    procs.push(srcGateway)
    const sessionCount = options.sessions ?? 4
    const boundSessions = Math.min(2, sessionCount)
    const sessionIds: Array<string> = []
    for (let i = 0; i < sessionCount; i++) {
      const created = await expect("create session", src.post("/api/sessions", { title: `restore drill ${i}` }), 201)
      sessionIds.push(created.session.id)
      if (i < boundSessions) await bindSession(srcWeb.baseUrl, token, grant.bindingId, `restore-thread-${i}`, created.session.id)
      for (let p = 0; p < 2; p++) {
        await expect("prompt", src.post(`/api/sessions/${created.session.id}/prompt`, { text: `[[events:3]] seed ${i}.${p}` }), 202)
      }
    }
    // One inbound provider event (a new thread: the cloud creates its session); its reply is a delivery too.
    const inboundEvent = { eventId: "restore-drill-in-1", bindingId: grant.bindingId, threadId: "restore-thread-inbound", text: "[[events:2]] inbound before the backup" }
    const inboundStatus = await postInbound(srcGatewaySettings.port, grant.inboundSecret, inboundEvent)
    if (inboundStatus !== 202) throw new Error(`inbound provider event: HTTP ${inboundStatus} (expected 202)`)
    const artifactShas = new Map<string, string>()
    for (const sessionId of sessionIds.slice(0, 2)) {
      for (let a = 0; a < 2; a++) {
        const bytes = Crypto.randomBytes(2_048 + a * 1_000)
        const uploaded = await expect("upload artifact", src.post(`/api/sessions/${sessionId}/artifacts`, {
          filename: `drill-${a}.bin`,
          contentType: "application/octet-stream",
          dataBase64: bytes.toString("base64")
        }), 201)
        artifactShas.set(uploaded.artifact.id, sha256(bytes))
      }
    }
    const manual = await expect("create workflow", src.post("/api/workflows", {
      title: "restore drill manual",
      instructions: "summarise the drill",
      agentName: "build",
      triggers: [{ type: "manual", enabled: true }]
    }), 201)
    await expect("create workflow", src.post("/api/workflows", {
      title: "restore drill daily",
      instructions: "daily report",
      agentName: "build",
      triggers: [{ type: "schedule", enabled: true, schedule: { type: "daily", timezone: "UTC", runAtHour: (new Date().getUTCHours() + 12) % 24, runAtMinute: 0 } }]
    }), 201)
    await expect("run workflow", src.post(`/api/workflows/${manual.workflow.id}/run`), 202)
    const byokStored = await src.post("/api/byok/openai", { apiKey: `sk-drill-${Crypto.randomBytes(12).toString("hex")}` })
    if (byokStored.status !== 200 && byokStored.status !== 201) throw new Error(`store BYOK key: HTTP ${byokStored.status} ${JSON.stringify(byokStored.body)}`)

    await waitFor("every seeded command to finish", async () => {
      const rows = await query<{ open: string; total: string }>(sourceUrl,
        `SELECT count(*) FILTER (WHERE status IN ('pending','running')) AS open, count(*) AS total FROM cloud_session_commands`)
      return Number(rows[0]!.open) === 0 && Number(rows[0]!.total) >= sessionCount * 2 + 1 ? true : undefined
    }, 120_000, 250)
    await waitFor("the manual workflow run to complete", async () => {
      const runs = await src.get(`/api/workflows/${manual.workflow.id}/runs`)
      return runs.body.runs?.[0]?.status === "completed" ? true : undefined
    }, 60_000, 250)
    // Deliveries: the ones so far sent by the gateway; then the gateway stops and one more reply per bound session
    // stays pending in the outbox (what the restored stack must deliver, once).
    const deliveryStatus = async (url: string) => {
      const rows = await query<{ k: string; status: string }>(url, "SELECT idempotency_key AS k, status FROM cloud_channel_deliveries")
      return { rows, summary: Object.entries(Object.groupBy(rows, (r) => r.status)).map(([status, list]) => `${status} ${list!.length}`).sort().join(", ") }
    }
    await waitFor("the source gateway to deliver every reply", async () => {
      const { rows } = await deliveryStatus(sourceUrl)
      return rows.length >= boundSessions * 2 + 1 && rows.every((r) => r.status === "sent" && provider!.firstAt.has(r.k)) ? true : undefined
    }, 60_000, 250)
    await srcGateway.stop()
    for (let i = 0; i < boundSessions; i++) {
      await expect("prompt", src.post(`/api/sessions/${sessionIds[i]}/prompt`, { text: `[[events:2]] pending reply ${i}` }), 202)
    }
    await waitFor("the replies left for the gateway to be pending deliveries", async () => {
      const open = await query<{ n: string }>(sourceUrl, "SELECT count(*) AS n FROM cloud_session_commands WHERE status IN ('pending','running')")
      const pending = (await deliveryStatus(sourceUrl)).rows.filter((r) => r.status === "pending").length
      return Number(open[0]!.n) === 0 && pending >= boundSessions ? true : undefined
    }, 60_000, 250)
    const sourceDeliveries = await deliveryStatus(sourceUrl)
    const sentBefore = new Set(sourceDeliveries.rows.filter((r) => r.status === "sent").map((r) => r.k))
    const pendingBefore = sourceDeliveries.rows.filter((r) => r.status === "pending").map((r) => r.k)
    await waitFor("checkpoints in the source store", async () => {
      const rows = await query<{ n: string }>(sourceUrl, "SELECT count(*) AS n FROM cloud_session_commands WHERE status = 'acked'")
      const dir = Path.join(work, "source-objects", "data", "checkpoints")
      return Number(rows[0]!.n) > 0 && Fs.existsSync(dir) ? true : undefined
    }, 30_000, 250)

    // What the restored stack must show again, read through the API.
    const snapshotOf = async (client: ReturnType<typeof api>) => {
      const page = await client.get("/api/sessions?limit=100")
      if (page.status !== 200) throw new Error(`GET /api/sessions: HTTP ${page.status} ${JSON.stringify(page.body)}`)
      const sessions = page.body.sessions as Array<any>
      const views: Record<string, string> = {}
      const lastSequence: Record<string, number> = {}
      for (const s of sessions) {
        const view = (await client.get(`/api/sessions/${s.id}/view`)).body
        views[s.id] = stableView(view)
        lastSequence[s.id] = Number(view.projectedSequence ?? view.lastSequence ?? 0)
      }
      const artifacts = ((await client.get("/api/artifacts?limit=100")).body.artifacts ?? []) as Array<any>
      const workflows = ((await client.get("/api/workflows")).body.workflows ?? []) as Array<any>
      const runs: Record<string, number> = {}
      for (const w of workflows) runs[w.id] = Number((await client.get(`/api/workflows/${w.id}/runs`)).body.totalEstimate ?? 0)
      const byok = ((await client.get("/api/byok")).body.keys ?? []) as Array<any>
      return {
        sessionIds: sessions.map((s) => s.id).sort(),
        views,
        lastSequence,
        artifacts: artifacts.map((a) => `${a.id}:${a.name}:${a.sizeBytes}`).sort(),
        workflows: workflows.map((w) => `${w.id}:${w.title}:${w.lifecycle ?? w.status}`).sort(),
        runs,
        byok: byok.map((k) => `${k.provider}:${k.last4}:${k.fingerprint}:${k.status}`).sort()
      }
    }
    const before = await snapshotOf(src)

    // ---- 2. backup (web still up: an online backup) ---------------------------------------------------------
    log("restore drill: stopping worker and scheduler; cowork backup")
    await srcWorker.stop()
    await srcScheduler.stop()
    const backupStarted = Date.now()
    const backedUp = await must("cowork backup", runCowork(["backup", "--to", backupDir], sourceEnv))
    const backupMs = Date.now() - backupStarted
    const manifest = JSON.parse(Fs.readFileSync(Path.join(backupDir, "manifest.json"), "utf8")) as Manifest
    void backedUp
    await srcWeb.proc.stop()

    // ---- 3. restore: refused while a worker is attached, then into a new database and store -----------------
    log("restore drill: cowork restore (first with a worker attached: must be refused)")
    await ensureDatabase(serverUrl, targetDb)
    const psql = findProgram("psql", server?.major)
    const attached = ChildProcess.spawn(psql, ["-q", "-d", new URL(targetUrl).toString(), "-c", "SELECT pg_sleep(120)"], {
      env: { ...process.env, PGAPPNAME: "cowork-worker", ...(new URL(targetUrl).password === "" ? {} : { PGPASSWORD: decodeURIComponent(new URL(targetUrl).password) }) },
      stdio: "ignore"
    })
    await waitFor("the stand-in worker connection", async () => {
      const rows = await query<{ n: string }>(serverUrl, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'cowork-worker'", [targetDb])
      return Number(rows[0]!.n) > 0 ? true : undefined
    }, 15_000)
    const refused = await runCowork(["restore", "--from", backupDir, "--database-url", targetUrl, "--object-store-uri", targetStore], base)
    // The stand-in "worker" leaves (a killed client's backend would sit in pg_sleep until it next writes).
    await query(serverUrl, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'cowork-worker'", [targetDb])
    attached.kill("SIGKILL")
    await waitFor("the stand-in worker to disconnect", async () => {
      const rows = await query<{ n: string }>(serverUrl, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'cowork-worker'", [targetDb])
      return Number(rows[0]!.n) === 0 ? true : undefined
    }, 15_000)
    const refusal: Check = {
      check: "`cowork restore` while a worker is connected to the target database",
      ok: refused.code !== 0 && /refusing to restore while workers are attached/.test(refused.stderr + refused.stdout),
      detail: `exit ${refused.code}: ${(refused.stderr + refused.stdout).trim().split("\n").filter((l) => l.trim() !== "" && l.trim() !== "ERROR").at(-1)?.trim() ?? ""}`
    }
    const restoreStarted = Date.now()
    const restoredOut = await must("cowork restore", runCowork(["restore", "--from", backupDir, "--database-url", targetUrl, "--object-store-uri", targetStore], base))
    const restoreMs = Date.now() - restoreStarted
    const restored = (JSON.parse(restoredOut.stdout.trim().split("\n").at(-1)!) as { restored: RestoreResult }).restored
    const restoredAt = new Date().toISOString()

    // ---- 4. web alone ---------------------------------------------------------------------------------------
    log("restore drill: web alone on the restored data")
    const checks: Array<Check> = []
    const record = (check: string, ok: boolean, detail: string) => checks.push({ check, ok, detail })
    const dstWeb = await startWeb("restored-web", targetEnv)
    const dst = api(dstWeb.baseUrl)
    for (const path of ["/healthz", "/api/workspace", "/api/diagnostics", "/api/metrics"]) {
      const r = path === "/healthz" ? await call(dstWeb.baseUrl, "", "GET", path) : await dst.get(path)
      record(`GET ${path}`, r.status === 200, `HTTP ${r.status}`)
    }
    const status = await dst.get("/api/runtime/status")
    record("no worker or scheduler heartbeat is fresh while web runs alone", status.status === 200 && status.body.heartbeats?.freshWorkers === 0 && status.body.heartbeats?.freshSchedulers === 0,
      `freshWorkers ${status.body.heartbeats?.freshWorkers}, freshSchedulers ${status.body.heartbeats?.freshSchedulers}`)
    const restoredDeliveries = await deliveryStatus(targetUrl)
    const after = await snapshotOf(dst)
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
    record("session list (ids)", same(before.sessionIds, after.sessionIds), `${after.sessionIds.length} sessions (source ${before.sessionIds.length})`)
    const viewDiffs = before.sessionIds.filter((id) => before.views[id] !== after.views[id])
    record("durable projections: every session view equal to the source's", viewDiffs.length === 0, viewDiffs.length === 0 ? `${before.sessionIds.length} views equal` : `differ: ${viewDiffs.join(", ")}`)
    record("artifact metadata", same(before.artifacts, after.artifacts), `${after.artifacts.length} artifacts`)
    let bytesOk = 0
    for (const [artifactId, expected] of artifactShas) {
      const row = after.artifacts.find((a) => a.startsWith(`${artifactId}:`))
      const meta = (await query<{ session_id: string }>(targetUrl, "SELECT session_id FROM cloud_artifacts WHERE id = $1", [artifactId]))[0]
      if (row === undefined || meta === undefined) continue
      const response = await fetch(`${dstWeb.baseUrl}/api/sessions/${meta.session_id}/artifacts/${artifactId}`, { headers: { authorization: `Bearer ${token}` } })
      if (response.status === 200 && sha256(new Uint8Array(await response.arrayBuffer())) === expected) bytesOk++
    }
    record("artifact downloads: bytes equal (sha256) to what was uploaded", bytesOk === artifactShas.size, `${bytesOk}/${artifactShas.size}`)
    record("workflow definitions", same(before.workflows, after.workflows), `${after.workflows.length} workflows`)
    record("workflow run history", same(before.runs, after.runs), JSON.stringify(Object.values(after.runs)))
    record("BYOK metadata (provider, last4, fingerprint, status; no plaintext)", same(before.byok, after.byok), `${after.byok.length} key(s)`)

    // ---- 5. one worker, a bounded smoke prompt ----------------------------------------------------------------
    log("restore drill: one worker, smoke prompt")
    const dstWorker = await startRole("restored-worker", "worker", targetEnv)
    void dstWorker
    const smokeSession = sessionIds[0]!
    const checkpointDir = Path.join(work, "restored-objects", "data", "checkpoints")
    /** The checkpoint manifests in the restored store (names: a session keeps its newest few, so counts can stay flat). */
    const listManifests = () => {
      const names = new Set<string>()
      const walk = (dir: string) => {
        if (!Fs.existsSync(dir)) return
        for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
          if (entry.isDirectory()) walk(Path.join(dir, entry.name))
          else if (dir.endsWith(`${Path.sep}manifests`)) names.add(Path.join(dir, entry.name))
        }
      }
      walk(checkpointDir)
      return names
    }
    const manifestsBefore = listManifests()
    const smokeStarted = Date.now()
    const prompted = await dst.post(`/api/sessions/${smokeSession}/prompt`, { text: "[[events:2]] restore smoke" })
    const commandId = prompted.body?.commandId as string | undefined
    const smokeStatus = await waitFor("the smoke prompt to be acked", async () => {
      const rows = await query<{ status: string }>(targetUrl, "SELECT status FROM cloud_session_commands WHERE id = $1", [commandId ?? ""])
      const s = rows[0]?.status
      return s === "acked" || s === "failed" || s === "dead" ? s : undefined
    }, 60_000, 200).catch((e) => `not finished: ${String(e)}`)
    const smokeMs = Date.now() - smokeStarted
    record("smoke prompt on a restored session (POST /api/sessions/:id/prompt → acked)", prompted.status === 202 && smokeStatus === "acked", `HTTP ${prompted.status}, command ${smokeStatus} in ${smokeMs} ms`)
    const seqs = (await query<{ sequence: string }>(targetUrl, "SELECT sequence FROM cloud_session_events WHERE session_id = $1 ORDER BY sequence", [smokeSession])).map((r) => Number(r.sequence))
    const contiguous = seqs.every((s, i) => s === i + 1)
    const newEvents = seqs.filter((s) => s > (before.lastSequence[smokeSession] ?? 0)).length
    record("event sequence continues after the restored one without a gap", contiguous && newEvents > 0, `1..${seqs.at(-1)}, ${newEvents} new after ${before.lastSequence[smokeSession]}`)
    const newManifests = () => [...listManifests()].filter((name) => !manifestsBefore.has(name)).length
    const written = await waitFor("a new checkpoint manifest", async () => (newManifests() > 0 ? newManifests() : undefined), 30_000, 200).catch(() => 0)
    record("checkpoint written to the restored store after the smoke prompt", written > 0,
      `${written} new checkpoint manifest(s) (${manifestsBefore.size} restored; a session keeps its newest few)`)

    // ---- 6. scheduler: a due slot is claimed once; restored workflows do not fire again ------------------------
    log("restore drill: scheduler")
    const dstScheduler = await startRole("restored-scheduler", "scheduler", targetEnv)
    void dstScheduler
    const due = await dst.post("/api/workflows", {
      title: "restore drill due slot",
      instructions: "due after restore",
      agentName: "build",
      triggers: [{ type: "schedule", enabled: true, schedule: { type: "cron", expression: "*/2 * * * * *", timezone: "UTC" } }],
      overlapPolicy: "skip"
    })
    const dueId = due.body?.workflow?.id as string | undefined
    const claimed = await waitFor("the scheduler to claim the due slot and the run to complete", async () => {
      const runs = await dst.get(`/api/workflows/${dueId}/runs`)
      const run = (runs.body.runs as Array<any> | undefined)?.find((r) => r.status === "completed")
      return run === undefined ? undefined : run
    }, 60_000, 250).catch(() => undefined)
    if (dueId !== undefined) await dst.post(`/api/workflows/${dueId}/pause`)
    record("scheduler claims a due workflow slot and its run completes (worker)", due.status === 201 && claimed !== undefined, claimed === undefined ? `no completed run (create HTTP ${due.status})` : `run ${claimed.id} completed`)
    const slotDupes = await query<{ n: string }>(targetUrl,
      `SELECT count(*) AS n FROM (SELECT workflow_id, scheduled_for FROM cloud_workflow_runs WHERE scheduled_for IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d`)
      .catch(async () => [{ n: "0" }])
    const runsNow: Record<string, number> = {}
    for (const id of Object.keys(before.runs)) runsNow[id] = Number((await dst.get(`/api/workflows/${id}/runs`)).body.totalEstimate ?? 0)
    record("restored workflows did not fire again; no slot fired twice", same(before.runs, runsNow) && Number(slotDupes[0]!.n) === 0, `runs ${JSON.stringify(Object.values(runsNow))}, duplicate slots ${slotDupes[0]!.n}`)

    // ---- 6b. gateway last: deliveries resume from the durable outbox, once ---------------------------------------
    log("restore drill: gateway last; deliveries resume")
    const arrivalsBefore = provider.arrivals.length
    const dstGatewaySettings = await gatewaySettings(dstWeb.baseUrl, "restored-gateway")
    procs.push(await startGateway("restored-gateway", grant, dstGatewaySettings))
    await waitFor("the pending deliveries to reach the provider", async () => (pendingBefore.every((k) => provider!.firstAt.has(k)) ? true : undefined), 60_000, 100)
      .catch(() => undefined)
    const settled = await waitFor("no delivery pending or claimed in the restored database", async () => {
      const { rows, summary } = await deliveryStatus(targetUrl)
      return rows.every((r) => r.status === "sent") ? summary : undefined
    }, 30_000, 250).catch(async () => (await deliveryStatus(targetUrl)).summary)
    const resent = provider.arrivals.slice(arrivalsBefore)
    const arrivalsOf = (key: string) => resent.filter((a) => a.key === key).length
    const pendingOnce = pendingBefore.filter((k) => arrivalsOf(k) === 1).length
    record("gateway started last: every delivery pending at the backup arrives at the provider exactly once",
      pendingBefore.length > 0 && pendingOnce === pendingBefore.length,
      `${pendingOnce}/${pendingBefore.length} pending deliveries received once (${resent.length} posts since the gateway started)`)
    const sentAgain = [...sentBefore].filter((k) => arrivalsOf(k) > 0).length
    record("deliveries sent before the backup are not sent again", sentBefore.size > 0 && sentAgain === 0, `${sentAgain} of ${sentBefore.size} sent again`)
    record("no delivery left pending or claimed after the gateway ran", settled.split(", ").every((part) => part.startsWith("sent ")), settled)
    const again = await postInbound(dstGatewaySettings.port, grant.inboundSecret, inboundEvent, 1)
    const prompts = await query<{ n: string }>(targetUrl, "SELECT count(*) AS n FROM cloud_session_commands WHERE idempotency_key = $1", [inboundEvent.eventId])
    record("the inbound provider event posted again after the restore is a duplicate (claimed before the backup: no second prompt)",
      again === 200 && Number(prompts[0]!.n) === 1, `HTTP ${again}, ${prompts[0]!.n} prompt(s) for the event`)

    // ---- 7. report --------------------------------------------------------------------------------------------
    const t = restored.tables
    const count = (table: string) => t[table] ?? { before: "n/a", after: "n/a" }
    const runbookCounts = [
      { what: "sessions (cloud_sessions)", ...count("cloud_sessions") },
      { what: "session events (cloud_session_events)", ...count("cloud_session_events") },
      { what: "projections (cloud_session_projections)", ...count("cloud_session_projections") },
      { what: "projected messages (cloud_session_projection_messages)", ...count("cloud_session_projection_messages") },
      { what: "commands (cloud_session_commands)", ...count("cloud_session_commands") },
      { what: "artifacts (cloud_artifacts)", ...count("cloud_artifacts") },
      { what: "workflows (cloud_workflows)", ...count("cloud_workflows") },
      { what: "workflow runs (cloud_workflow_runs)", ...count("cloud_workflow_runs") },
      { what: "BYOK keys, ciphertext (cloud_byok_keys)", ...count("cloud_byok_keys") },
      { what: "audit events (cloud_audit_events)", ...count("cloud_audit_events") },
      { what: "channel bindings (cloud_channel_bindings)", ...count("cloud_channel_bindings") },
      { what: "channel routes, thread → session (cloud_channel_routes)", ...count("cloud_channel_routes") },
      { what: "gateway token grants, token → binding (cloud_channel_gateway_tokens)", ...count("cloud_channel_gateway_tokens") },
      { what: "gateway provider events and signature replay keys (cloud_channel_provider_events)", ...count("cloud_channel_provider_events") },
      {
        what: "deliveries by status (cloud_channel_deliveries; after = restored, before the gateway ran)",
        before: `${t.cloud_channel_deliveries?.before ?? 0} rows: ${sourceDeliveries.summary}`,
        after: `${t.cloud_channel_deliveries?.after ?? 0} rows: ${restoredDeliveries.summary}`
      },
      { what: "object-store objects (checkpoints, artifacts)", before: manifest.objectStore.objects, after: restored.objects.restored }
    ]
    const excluded = [
      ...manifest.excluded,
      "Gateway providers other than the generic webhook (Telegram, Slack, email): the drill's binding is a webhook at a fake provider on loopback; the outbox and provider-event tables are the same for every provider",
      "worker heartbeats and leases are restored as they were at the backup; they age out (no worker holds a lease after the restore)"
    ].filter((line) => line !== "")
    const ok = refusal.ok && checks.every((c) => c.ok)
    const report: RestoreDrillReport = {
      ok,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      environment: {
        name: "local restore drill (`cowork drill restore`)",
        postgres: postgresLabel,
        objectStore: "file object store (a new directory per stack)",
        node: process.version,
        host: `${Os.type()} ${Os.arch()}, ${Os.cpus().length} CPU`
      },
      source: { database: sourceDb, backupCreatedAt: manifest.createdAt },
      target: { database: targetDb, restoredAt, restoreMs, backupMs },
      backup: {
        dumpBytes: manifest.postgres.bytes,
        dumpSha256: manifest.postgres.sha256,
        pgDump: manifest.postgres.pgDumpVersion,
        objects: manifest.objectStore.objects,
        objectBytes: manifest.objectStore.bytes,
        listingSha256: manifest.objectStore.listingSha256
      },
      secretRefs: "local key-file secret adapter (OPEN_COWORK_CLOUD_SECRET_KEY_REF unset: the data dir's key file), the same file for the source and the restored stack; no key material, version or fingerprint of it is in the backup or this report",
      tables: restored.tables,
      runbookCounts,
      refusal,
      checks,
      excluded,
      followUps: ok ? [] : ["a check failed: see the table above"]
    }
    if (options.reportPath !== undefined) {
      Fs.mkdirSync(Path.dirname(options.reportPath), { recursive: true })
      Fs.writeFileSync(options.reportPath, renderReport(report))
      Fs.writeFileSync(options.reportPath.replace(/\.md$/, ".json"), `${JSON.stringify(report, null, 2)}\n`)
    }
    return report
  } catch (error) {
    for (const proc of procs) {
      if (proc.alive()) process.stderr.write(`--- ${proc.name} output (tail) ---\n${proc.output().slice(-3_000)}\n`)
    }
    throw error
  } finally {
    await Promise.all(procs.map((proc) => proc.stop(20_000)))
    await provider?.close()
    if (server !== undefined) await server.stop()
    Fs.rmSync(work, { recursive: true, force: true })
  }
}

const renderReport = (r: RestoreDrillReport): string => {
  const mark = (ok: boolean) => (ok ? "pass" : "FAIL")
  const lines = [
    "# Restore drill report",
    "",
    "Written by `cowork drill restore` (apps/cli/src/ops/RestoreDrill.ts) from the run below; rerun it to refresh. The",
    "procedure is docs/runbooks/backup-restore.md. No customer data, credentials, signed URLs or local paths appear here.",
    "",
    `- Result: **${r.ok ? "pass" : "FAIL"}**`,
    `- Environment: ${r.environment.name}; ${r.environment.postgres}; ${r.environment.objectStore}; Node ${r.environment.node}; ${r.environment.host}`,
    `- Restore target: database \`${r.target.database}\` and a new, empty object store; timestamp ${r.target.restoredAt}`,
    `- Postgres backup source: database \`${r.source.database}\`, \`pg_dump ${r.backup.pgDump} --format=custom --no-owner --no-acl\` from one exported snapshot at ${r.source.backupCreatedAt}; dump ${r.backup.dumpBytes} bytes, sha256 \`${r.backup.dumpSha256.slice(0, 16)}…\`; backup took ${r.target.backupMs} ms`,
    `- Restore: \`cowork restore\` (pg_restore --clean --if-exists --no-owner --no-acl --single-transaction, then the object store) took ${r.target.restoreMs} ms; finished ${r.target.restoredAt}`,
    `- Object-store snapshot used: the backup's copy of the store, ${r.backup.objects} objects, ${r.backup.objectBytes} bytes, listing sha256 \`${r.backup.listingSha256.slice(0, 16)}…\` (every object's sha256 checked on restore)`,
    `- Secret manager / KMS references: ${r.secretRefs}`,
    `- Drill duration: ${(r.durationMs / 1000).toFixed(1)} s (${r.startedAt} → ${r.finishedAt})`,
    "",
    "## Counts before and after restore",
    "",
    "| what | before (backup snapshot) | after (restored) |",
    "|---|---|---|",
    ...r.runbookCounts.map((c) => `| ${c.what} | ${c.before} | ${c.after} |`),
    "",
    "<details><summary>Every table</summary>",
    "",
    "| table | before | after |",
    "|---|---|---|",
    ...Object.entries(r.tables).map(([name, c]) => `| ${name} | ${c.before} | ${c.after} |`),
    "",
    "</details>",
    "",
    "## Smoke commands and results",
    "",
    "| step | check | result | detail |",
    "|---|---|---|---|",
    `| restore | ${r.refusal.check} | ${r.refusal.ok ? "refused (pass)" : "FAIL"} | ${r.refusal.detail.replaceAll("|", "\\|")} |`,
    ...r.checks.map((c) => `| ${/gateway|deliver|inbound/.test(c.check) ? "+ gateway" : c.check.startsWith("GET") || c.check.includes("heartbeat") || c.check.includes("session list") || c.check.includes("projections") || c.check.includes("artifact") || c.check.includes("workflow definitions") || c.check.includes("run history") || c.check.includes("BYOK") ? "web only" : c.check.includes("scheduler") || c.check.includes("did not fire") ? "+ scheduler" : "+ one worker"} | ${c.check} | ${mark(c.ok)} | ${c.detail.replaceAll("|", "\\|")} |`),
    "",
    "## Intentionally excluded",
    "",
    ...r.excluded.map((e) => `- ${e}`),
    "",
    "## Follow-up fixes and owner",
    "",
    ...(r.followUps.length === 0 ? ["- none from this run (owner of the drill: deploy)"] : r.followUps.map((f) => `- ${f} (owner: deploy)`)),
    ""
  ]
  return lines.join("\n")
}
