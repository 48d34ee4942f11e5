import { InboundSignatures } from "@cowork/channels"
import { Database } from "@cowork/postgres"
import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { WebhookReceiver } from "../../../../packages/channels/test/support/WebhookReceiver.ts"
import { type CoworkProcess, eventually, freePort, runCli, spawn, waitReady } from "../../../../test/support/CoworkProcess.ts"
import { freshDatabaseUrl } from "../../../../test/support/TestDatabase.ts"

/**
 * The gateway drill of issue 11 with real processes: `cowork web`, `cowork worker` and two `cowork gateway` replicas
 * on one database, the outbound webhook provider posting to a receiver in this process. 300 bound-session replies are
 * produced while a gateway is SIGKILLed three times during delivery (and started again). Every delivery must reach the receiver
 * with its idempotency key at least once and, deduplicated by key, exactly once; raw duplicates (possible only for a
 * kill between the provider's answer and the ack) are reported; no delivery is left `claimed`; the same provider
 * event posted to both replicas prompts once. Gateway output never shows a credential.
 */

const SESSIONS = 30
const PROMPTS_PER_SESSION = 10
const TOTAL = SESSIONS * PROMPTS_PER_SESSION
/** Distinct delivered keys at which a gateway is SIGKILLed (while the rest are still to come). */
const KILL_AT_KEYS = [40, 120, 200]
const HOOK_IN = "drill-canary-inbound-secret-5c1a"

const call = (baseUrl: string, token: string, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as any }
  })

const drill = (url: string) =>
  Effect.gen(function*() {
    const receiver = new WebhookReceiver()
    yield* Effect.promise(() => receiver.start())
    yield* Effect.addFinalizer(() => Effect.promise(() => receiver.stop()))

    const env = {
      OPEN_COWORK_DATABASE_URL: url,
      OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-gateway-drill-")),
      // The receiver listens on loopback: allowed explicitly (web at binding create, gateways at send).
      OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1"
    }
    yield* runCli(["migrate"], env)
    const admin = (yield* runCli(["admin", "token", "create", "--scopes", "web,admin", "--name", "drill"], env)).stdout.trim().split("\n").at(-1)!
    const serving = { ...env, OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false" }
    const webPort = yield* freePort
    const web = yield* spawn("web", ["web"], { ...serving, OPEN_COWORK_CLOUD_PORT: String(webPort) })
    const baseUrl = `http://127.0.0.1:${webPort}`
    yield* waitReady(web, baseUrl)
    yield* spawn("worker", ["worker"], {
      ...serving,
      OPEN_COWORK_CLOUD_WORKER_ID: "drill-worker",
      OPEN_COWORK_CLOUD_WORKER_CONCURRENCY: "8",
      OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "500",
      OPEN_COWORK_SCRIPTED_DELTAS: "1"
    })

    const binding = yield* call(baseUrl, admin, "POST", "/api/channels/bindings", {
      providerKind: "webhook", providerId: "hooks", displayName: "drill", externalTarget: receiver.url
    })
    assert.strictEqual(binding.status, 201, JSON.stringify(binding.body))
    const bindingId = binding.body.binding.id as string
    const issued = yield* call(baseUrl, admin, "POST", "/api/channels/gateway-tokens", { name: "drill", channelBindingIds: [bindingId] })
    assert.strictEqual(issued.status, 201, JSON.stringify(issued.body))
    const gatewayToken = issued.body.secret as string

    const gatewayEnv = (name: string, port: number) => ({
      OPEN_COWORK_GATEWAY_CLOUD_URL: baseUrl,
      OPEN_COWORK_GATEWAY_TOKEN: gatewayToken,
      OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: env.OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS,
      OPEN_COWORK_GATEWAY_PORT: String(port),
      OPEN_COWORK_GATEWAY_ID: name,
      OPEN_COWORK_GATEWAY_CLAIM_TTL_MS: "5000",
      OPEN_COWORK_GATEWAY_POLL_INTERVAL_MS: "500",
      OPEN_COWORK_GATEWAY_CONCURRENCY: "8",
      DRILL_HOOK_IN: HOOK_IN,
      OPEN_COWORK_GATEWAY_PROVIDERS: JSON.stringify([{ id: "hooks", kind: "webhook", inboundSecretRef: "env:DRILL_HOOK_IN", timeoutMs: 2_000 }])
    })
    const ports = [yield* freePort, yield* freePort]
    const outputs: Array<CoworkProcess> = []
    const startGateway = (index: number) =>
      Effect.gen(function*() {
        const proc = yield* spawn(`gateway-${index}`, ["gateway"], gatewayEnv(`drill-gw-${index}`, ports[index]!))
        outputs.push(proc)
        return proc
      })
    const gateways: Array<CoworkProcess> = [yield* startGateway(0), yield* startGateway(1)]
    for (const [index, port] of ports.entries()) {
      yield* eventually(`gateway ${index} ready`, Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/ready`).then((r) => (r.status === 200 ? true : undefined), () => undefined)), { timeoutMs: 60_000 })
    }

    // The same provider event posted to both replicas at once (each copy signed separately): one prompt.
    const event = JSON.stringify({ eventId: "drill-event-1", target: bindingId, userId: "drill-user", text: "one event, two replicas" })
    const post = (port: number, timestamp: string) =>
      fetch(`http://127.0.0.1:${port}/webhooks/hooks`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: timestamp,
          [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(HOOK_IN, timestamp, event)
        },
        body: event
      }).then((r) => r.status)
    const now = Math.floor(Date.now() / 1000)
    const statuses = yield* Effect.promise(() => Promise.all([post(ports[0]!, String(now)), post(ports[1]!, String(now - 1))]))
    assert.include(statuses, 202, `one replica prompted: ${statuses}`)

    // SIGKILL a gateway (alternating) each time the receiver's distinct keys cross a threshold, and start it again at
    // once: the kills land while deliveries remain, however fast this machine delivers (a timer-driven killer found
    // every reply delivered before its first tick on a quiet machine).
    let kills = 0
    let delivering = true
    const killer = yield* Effect.forkChild(Effect.gen(function*() {
      for (const threshold of KILL_AT_KEYS) {
        while (delivering && receiver.keys().size < threshold) yield* Effect.sleep(20)
        if (!delivering || receiver.keys().size > TOTAL) return
        const victim = kills % 2
        gateways[victim]!.child.kill("SIGKILL")
        yield* Effect.promise(() => gateways[victim]!.exited)
        kills++
        gateways[victim] = yield* startGateway(victim)
      }
    }))

    // 300 replies from 30 bound sessions.
    const sessionIds: Array<string> = []
    for (let s = 0; s < SESSIONS; s++) {
      const created = yield* call(baseUrl, admin, "POST", "/api/sessions", { title: `drill ${s}` })
      const sessionId = created.body.session.id as string
      const bound = yield* call(baseUrl, admin, "POST", `/api/channels/bindings/${bindingId}/sessions`, { externalThreadId: `thread-${s}`, sessionId })
      assert.strictEqual(bound.status, 201, JSON.stringify(bound.body))
      sessionIds.push(sessionId)
    }
    for (let p = 0; p < PROMPTS_PER_SESSION; p++) {
      for (const sessionId of sessionIds) {
        const accepted = yield* call(baseUrl, admin, "POST", `/api/sessions/${sessionId}/prompt`, { text: `reply ${p}`, idempotencyKey: `drill-${p}` })
        assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
      }
    }

    const sql = yield* SqlClient.SqlClient
    const counts = sql<{ status: string; n: string }>`SELECT status, count(*)::text AS n FROM cloud_channel_deliveries GROUP BY status`.pipe(
      Effect.map((rows) => Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Record<string, number>),
      Effect.orDie
    )
    const deadline = Date.now() + 240_000
    for (;;) {
      const done = yield* counts
      if ((done.sent ?? 0) >= TOTAL + 1 && receiver.keys().size >= TOTAL + 1) break
      if (Date.now() > deadline) assert.fail(`not delivered in time: ${JSON.stringify(done)}, keys ${receiver.keys().size}`)
      yield* Effect.sleep(500)
    }
    delivering = false
    yield* Fiber.join(killer)

    const rows = yield* sql<{ idempotency_key: string; status: string; attempts: number }>`
      SELECT idempotency_key, status, attempts FROM cloud_channel_deliveries`.pipe(Effect.orDie)
    const keys = receiver.keys()
    const missing = rows.filter((row) => !keys.has(row.idempotency_key))
    const rawDuplicates = receiver.received.length - keys.size
    console.log(
      `gateway drill: ${rows.length} deliveries, ${keys.size} distinct keys received, ${receiver.received.length} raw posts ` +
        `(${rawDuplicates} duplicates), ${kills} SIGKILLs, max attempts ${Math.max(...rows.map((r) => Number(r.attempts)))}`
    )
    assert.strictEqual(rows.length, TOTAL + 1, "300 replies + the one inbound event's reply")
    assert.deepStrictEqual(missing, [], "every delivery observed with its idempotency key")
    assert.strictEqual(keys.size, rows.length, "exactly once after dedup by key")
    assert.deepStrictEqual(rows.filter((row) => row.status !== "sent").map((row) => row.status), [], "none stuck claimed, none dead")
    assert.isAtLeast(kills, 2, "the drill killed gateways while delivering")

    // The event sent to both replicas prompted exactly once.
    const prompted = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM cloud_session_commands WHERE idempotency_key = 'drill-event-1'`.pipe(Effect.orDie)
    assert.strictEqual(Number(prompted[0]!.n), 1)

    for (const proc of outputs) {
      assert.notInclude(proc.output(), HOOK_IN, `${proc.name} output`)
      assert.notInclude(proc.output(), gatewayToken.split("_").slice(2).join("_"), `${proc.name} output`)
    }
  })

it.live("gateway drill: 2 replicas, SIGKILL three times during delivery, 300 replies delivered exactly once after dedup, none stuck claimed", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    yield* drill(url).pipe(
      Effect.scoped,
      Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "gateway-drill-inspector" }))
    )
  }), { timeout: 400_000 })
