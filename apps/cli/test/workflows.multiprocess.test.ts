import { WebhookSignature } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { type CoworkProcess, eventually, freePort, runCli, spawn, waitReady } from "../../../test/support/CoworkProcess.ts"

/**
 * Workflows across real processes: two `cowork web` replicas, a worker and a scheduler on one database. A webhook
 * signature is accepted once across replicas and after a web restart; concurrent identical deliveries to both
 * replicas start one run; a run's session is run by the worker and the scheduler moves the run to `completed` with
 * the reply as its summary.
 */

const call = (baseUrl: string, token: string, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    return { status: response.status, body: await response.json() as any }
  })

const deliver = (baseUrl: string, workflowId: string, raw: string, headers: Record<string, string>) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}/webhooks/workflows/${workflowId}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: raw
    })
    return response.status
  })

const signed = (secret: string, raw: string) => {
  const timestamp = String(Math.floor(Date.now() / 1000))
  return {
    [WebhookSignature.TIMESTAMP_HEADER]: timestamp,
    [WebhookSignature.SIGNATURE_HEADER]: WebhookSignature.sign(secret, timestamp, raw)
  }
}

it.live("webhook replay refused across web replicas and after a restart; a run completes through worker and scheduler", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-wf-drill-")) }
    yield* runCli(["migrate"], env)
    const token = (yield* runCli(["admin", "token", "create", "--scopes", "web,operator"], env)).stdout.trim().split("\n").at(-1)!
    const serving = { ...env, OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false" }

    const startWeb = (name: string, port: number) =>
      Effect.gen(function*() {
        // The web judges freshness by its own interval (default 5 s: fresh within 15 s), robust on a loaded box.
        const proc = yield* spawn(name, ["web"], { ...serving, OPEN_COWORK_CLOUD_PORT: String(port) })
        yield* waitReady(proc, `http://127.0.0.1:${port}`)
        return proc
      })
    const portA = yield* freePort
    const portB = yield* freePort
    const a = `http://127.0.0.1:${portA}`
    const b = `http://127.0.0.1:${portB}`
    let webA: CoworkProcess = yield* startWeb("web-a", portA)
    yield* startWeb("web-b", portB)
    yield* spawn("worker", ["worker"], { ...serving, OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "500", OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500" })
    const livenessPort = yield* freePort
    const scheduler = yield* spawn("scheduler", ["scheduler"], {
      ...serving,
      OPEN_COWORK_CLOUD_SCHEDULER_TICK_MS: "200",
      OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500",
      OPEN_COWORK_CLOUD_LIVENESS_PORT: String(livenessPort)
    })
    const probes = `http://127.0.0.1:${livenessPort}`
    yield* waitReady(scheduler, probes)
    const live = yield* Effect.promise(() => fetch(`${probes}/livez`).then((r) => r.json() as Promise<any>))
    assert.deepInclude(live, { ok: true, role: "scheduler" })

    const created = yield* call(a, token, "POST", "/api/workflows", {
      title: "on push",
      instructions: "report the push",
      agentName: "build",
      triggers: [{ id: "hook", type: "webhook", enabled: true }, { type: "manual", enabled: true }]
    })
    assert.strictEqual(created.status, 201)
    const workflowId: string = created.body.workflow.id
    const secret: string = created.body.webhookSecrets[0].secret

    const raw = JSON.stringify({ ref: "main" })
    const headers = signed(secret, raw)
    assert.strictEqual(yield* deliver(a, workflowId, raw, headers), 202)
    assert.strictEqual(yield* deliver(b, workflowId, raw, headers), 409, "the other replica refuses the replay")

    const concurrentRaw = JSON.stringify({ ref: "release" })
    const concurrent = signed(secret, concurrentRaw)
    const statuses = yield* Effect.all(
      [a, b, a, b].map((base) => deliver(base, workflowId, concurrentRaw, concurrent)),
      { concurrency: "unbounded" }
    )
    assert.deepStrictEqual([...statuses].sort(), [202, 409, 409, 409], "concurrent identical deliveries: one run")

    webA.child.kill("SIGKILL")
    yield* Effect.promise(() => webA.exited)
    webA = yield* startWeb("web-a-restarted", portA)
    assert.strictEqual(yield* deliver(a, workflowId, raw, headers), 409, "refused after a restart too")

    const runs = yield* call(b, token, "GET", `/api/workflows/${workflowId}/runs`)
    assert.strictEqual(runs.body.totalEstimate, 2)

    const manual = yield* call(a, token, "POST", `/api/workflows/${workflowId}/run`)
    assert.strictEqual(manual.status, 202)
    const completed = yield* eventually("every run to complete through its session", Effect.gen(function*() {
      const page = yield* call(b, token, "GET", `/api/workflows/${workflowId}/runs`)
      const all = page.body.runs as Array<{ id: string; status: string; summary: string | null }>
      return all.length === 3 && all.every((run) => run.status === "completed") ? all : undefined
    }), { timeoutMs: 60_000, intervalMs: 250 })
    const finished = completed.find((run) => run.id === manual.body.run.id)!
    assert.match(finished.summary ?? "", /^echo: report the push/)
    const status = yield* call(a, token, "GET", "/api/runtime/status")
    assert.deepInclude(status.body.heartbeats, { schedulers: 1, freshSchedulers: 1 })
    const beats = (yield* call(b, token, "GET", "/api/workers/heartbeats")).body.heartbeats as Array<{ role: string; fresh: boolean }>
    assert.isTrue(beats.some((beat) => beat.role === "scheduler" && beat.fresh))
    const detail = yield* call(a, token, "GET", `/api/workflows/${workflowId}`)
    assert.deepInclude(detail.body.workflow, { status: "active", latestRunId: manual.body.run.id, latestRunStatus: "completed" })

    const metrics = yield* Effect.promise(() => fetch(`${probes}/metrics`).then((r) => r.text()))
    assert.match(metrics, /open_cowork_cloud_scheduler_heartbeat_age_ms\{role="scheduler"\}/)
    assert.match(metrics, /open_cowork_cloud_scheduler_due_queue_depth\{role="scheduler"\} 0/)

    // Graceful drain: SIGTERM → releases its claims, beats `stopped`, exits 0.
    scheduler.child.kill("SIGTERM")
    assert.strictEqual(yield* Effect.promise(() => scheduler.exited), 0)
    assert.include(scheduler.output(), "scheduler drained")
    const after = (yield* call(b, token, "GET", "/api/workers/heartbeats")).body.heartbeats as Array<{ role: string; status: string }>
    assert.deepStrictEqual(after.filter((beat) => beat.role === "scheduler").map((beat) => beat.status), ["stopped"])
  }), 180_000)
