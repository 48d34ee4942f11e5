import { InboundSignatures } from "@cowork/channels"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { call, freePort, type Proc, sleep, spawnCowork, waitFor } from "./Procs.ts"

/**
 * Real `cowork gateway` processes for the drills and the load harness, with a fake provider on loopback: the
 * gateway's outbound `webhook` provider posts each delivery to `FakeProvider`, which records it with its idempotency
 * key and arrival time; inbound provider events are signed webhooks (gateway webhook v1 HMAC) posted to a gateway's
 * `POST /webhooks/hooks`, as a provider would.
 */

const PROVIDER_ID = "hooks"
/** The variable the gateways read their inbound webhook secret from (`inboundSecretRef: env:…`). */
const INBOUND_SECRET_VAR = "COWORK_DRILL_HOOK_IN"

interface Arrival {
  readonly key: string
  readonly at: number
}

export interface FakeProvider {
  /** The webhook binding's `externalTarget`. */
  readonly url: string
  /** Every POST received, in arrival order (raw: a redelivered key appears twice). */
  readonly arrivals: ReadonlyArray<Arrival>
  /** First arrival time per idempotency key (deduplicated). */
  readonly firstAt: ReadonlyMap<string, number>
  readonly close: () => Promise<void>
}

/** The fake provider: answers 200 to every POST after `delayMs` (a provider call that takes time, so claims are visible). */
export const startFakeProvider = async (delayMs = 0): Promise<FakeProvider> => {
  const arrivals: Array<Arrival> = []
  const firstAt = new Map<string, number>()
  const server = Http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      const at = Date.now()
      const key = String(req.headers[InboundSignatures.IDEMPOTENCY_KEY_HEADER] ?? "")
      arrivals.push({ key, at })
      if (!firstAt.has(key)) firstAt.set(key, at)
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{\"ok\":true}")
      }, delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals,
    firstAt,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

export interface GatewayGrant {
  readonly bindingId: string
  /** The `gateway`-scoped token (`occ_…`), bound to `bindingId` only. */
  readonly token: string
  /** The inbound webhook secret the gateways verify signatures with (generated per run). */
  readonly inboundSecret: string
}

/** A webhook binding whose target is the fake provider, and a gateway token for it (through the web's API, as an admin). */
export const provisionGateway = async (webUrl: string, adminToken: string, providerUrl: string): Promise<GatewayGrant> => {
  const binding = await call(webUrl, adminToken, "POST", "/api/channels/bindings", {
    providerKind: "webhook", providerId: PROVIDER_ID, displayName: "drill provider", externalTarget: providerUrl
  })
  if (binding.status !== 201) throw new Error(`creating the channel binding: HTTP ${binding.status} ${JSON.stringify(binding.body)}`)
  const bindingId = binding.body.binding.id as string
  const issued = await call(webUrl, adminToken, "POST", "/api/channels/gateway-tokens", { name: "drill gateways", channelBindingIds: [bindingId] })
  if (issued.status !== 201) throw new Error(`issuing the gateway token: HTTP ${issued.status} ${JSON.stringify(issued.body)}`)
  return { bindingId, token: issued.body.secret as string, inboundSecret: Crypto.randomBytes(24).toString("base64url") }
}

/** Binds `sessionId` to the binding's `externalThreadId`: its replies become deliveries to the fake provider. */
export const bindSession = async (webUrl: string, adminToken: string, bindingId: string, externalThreadId: string, sessionId: string) => {
  const bound = await call(webUrl, adminToken, "POST", `/api/channels/bindings/${bindingId}/sessions`, { externalThreadId, sessionId })
  if (bound.status !== 201) throw new Error(`binding session ${sessionId}: HTTP ${bound.status} ${JSON.stringify(bound.body)}`)
}

export interface GatewaySettings {
  readonly cloudUrl: string
  readonly port: number
  readonly gatewayId: string
  readonly claimTtlMs?: number | undefined
  readonly pollIntervalMs?: number | undefined
  readonly concurrency?: number | undefined
  readonly shutdownGraceMs?: number | undefined
}

/**
 * The fake provider listens on loopback, which a webhook binding's URL may use only when the operator allows it
 * (`OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS`): set on the gateways (send time) and the webs (binding create).
 */
export const LOOPBACK_WEBHOOKS: Readonly<Record<string, string>> = { OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" }

const gatewayEnv = (grant: GatewayGrant, settings: GatewaySettings): Record<string, string> => ({
  OPEN_COWORK_GATEWAY_CLOUD_URL: settings.cloudUrl,
  OPEN_COWORK_GATEWAY_TOKEN: grant.token,
  OPEN_COWORK_GATEWAY_PORT: String(settings.port),
  OPEN_COWORK_GATEWAY_ID: settings.gatewayId,
  OPEN_COWORK_GATEWAY_CLAIM_TTL_MS: String(settings.claimTtlMs ?? 5_000),
  OPEN_COWORK_GATEWAY_POLL_INTERVAL_MS: String(settings.pollIntervalMs ?? 500),
  OPEN_COWORK_GATEWAY_CONCURRENCY: String(settings.concurrency ?? 8),
  OPEN_COWORK_GATEWAY_WEBHOOK_RATE_PER_MINUTE: "100000",
  ...LOOPBACK_WEBHOOKS,
  OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: String(settings.shutdownGraceMs ?? 5_000),
  [INBOUND_SECRET_VAR]: grant.inboundSecret,
  OPEN_COWORK_GATEWAY_PROVIDERS: JSON.stringify([{ id: PROVIDER_ID, kind: "webhook", inboundSecretRef: `env:${INBOUND_SECRET_VAR}`, timeoutMs: 5_000 }])
})

/** Starts `cowork gateway` and waits for its `GET /ready` 200 (cloud reachable, feed connected, provider usable). */
export const startGateway = async (name: string, grant: GatewayGrant, settings: GatewaySettings, timeoutMs = 60_000): Promise<Proc> => {
  const proc = spawnCowork(name, ["gateway"], gatewayEnv(grant, settings))
  try {
    await waitFor(`${name} /ready`, async () => {
      if (!proc.alive()) throw new Error(`${name} exited`)
      const response = await fetch(`http://127.0.0.1:${settings.port}/ready`).catch(() => undefined)
      return response?.status === 200 ? true : undefined
    }, timeoutMs)
  } catch (error) {
    await proc.kill("SIGKILL")
    throw new Error(`${String(error)}\n--- ${name} output (tail) ---\n${proc.output().slice(-6_000)}`)
  }
  return proc
}

export interface InboundEvent {
  readonly eventId: string
  readonly bindingId: string
  readonly threadId: string
  readonly text: string
}

/**
 * POSTs one provider event, signed, to the gateway on `port`; the HTTP status, or 0 when the gateway is unreachable.
 * `attempt` goes in the body, so every post of the same event has its own signature (a provider's retry is signed
 * anew; a signature seen before is refused as a replay).
 */
export const postInbound = async (port: number, secret: string, event: InboundEvent, attempt = 0) => {
  const body = JSON.stringify({ eventId: event.eventId, target: event.bindingId, threadId: event.threadId, userId: "drill-user", text: event.text, attempt })
  const timestamp = String(Math.floor(Date.now() / 1000))
  return fetch(`http://127.0.0.1:${port}/webhooks/${PROVIDER_ID}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: timestamp,
      [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, timestamp, body)
    },
    body,
    signal: AbortSignal.timeout(10_000)
  }).then(async (r) => {
    await r.arrayBuffer()
    return r.status
  }, () => 0)
}

/**
 * A provider delivering one event: the same event posted to every gateway at once (each copy signed on its own, as
 * two provider retries would be), retried every 200 ms while none answered 2xx (a gateway down, the cloud
 * unavailable, or the event in progress on another replica: 503). Resolves with the posts made and the statuses of
 * the round that was accepted.
 */
export const deliverInbound = async (ports: () => ReadonlyArray<number>, secret: string, event: InboundEvent, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  let posts = 0
  for (;;) {
    const statuses = await Promise.all(ports().map((port) => postInbound(port, secret, event, posts++)))
    if (statuses.some((s) => s >= 200 && s < 300)) return { posts, statuses }
    if (Date.now() > deadline) throw new Error(`inbound event ${event.eventId} not accepted within ${timeoutMs} ms (last statuses ${statuses.join(", ")})`)
    await sleep(200)
  }
}

export { freePort }
