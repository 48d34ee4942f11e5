import { InboundSignatures } from "@cowork/channels"
import { orgCredentialEnvPrefix } from "@cowork/domain"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { FakeTelegram } from "../../../packages/channels/test/support/FakeTelegram.ts"
import { WebhookReceiver } from "../../../packages/channels/test/support/WebhookReceiver.ts"
import { ADMIN_TOKEN, type RunningGateway, startGateway } from "./support/GatewayHarness.ts"
import { MemoryCloud } from "./support/MemoryCloud.ts"

const TG_TOKEN = "424242:canary-gateway-telegram-token"
const HOOK_IN = "canary-hook-inbound-secret"
const HOOK_OUT = "canary-hook-outbound-secret"
const env = {
  GW_TG: TG_TOKEN,
  GW_HOOK_IN: HOOK_IN,
  GW_HOOK_OUT: HOOK_OUT,
  GW_TG_HOOK: "canary-tg-webhook-secret",
  // The fake receivers listen on loopback: an operator allows it (every other target must be public).
  OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1"
}

const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.fail(`not within ${timeoutMs} ms: ${what}`)
}

/**
 * No credential in the gateway's answers (/diagnostics, /metrics, /deliveries, /ready), the deliveries' errors, its
 * binding reports or its log lines (which must have recorded the unresolved credential); the answers, for more checks.
 */
const assertNoCredentialShown = async (gateway: RunningGateway, cloud: MemoryCloud, logs: ReadonlyArray<string>, canaries: ReadonlyArray<string>) => {
  const shown = await Promise.all([
    fetch(`${gateway.url}/diagnostics`, { headers: gateway.admin }).then((r) => r.text()),
    fetch(`${gateway.url}/metrics`, { headers: gateway.admin }).then((r) => r.text()),
    fetch(`${gateway.url}/deliveries`, { headers: gateway.admin }).then((r) => r.text()),
    fetch(`${gateway.url}/ready`).then((r) => r.text())
  ])
  const errors = [...cloud.deliveries.values()].map((d) => d.lastError ?? "").join("\n")
  assert.isTrue(logs.some((line) => line.includes("binding credential not resolved")), "the gateway's log lines were captured")
  for (const text of [...shown, errors, JSON.stringify(cloud.bindingReports), ...logs]) {
    for (const canary of canaries) assert.notInclude(text, canary)
  }
  return shown
}

describe("gateway role against an in-memory cloud", () => {
  const telegram = new FakeTelegram(TG_TOKEN)
  const receiver = new WebhookReceiver(HOOK_OUT)
  const cloud = new MemoryCloud({ maxAttempts: 4, baseBackoffMs: 20 })
  let gateway: RunningGateway

  beforeAll(async () => {
    await telegram.start()
    await receiver.start()
    gateway = await startGateway(cloud, [
      { id: "tg", kind: "telegram", botTokenRef: "env:GW_TG", webhookSecretRef: "env:GW_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 1_000 },
      { id: "hooks", kind: "webhook", inboundSecretRef: "env:GW_HOOK_IN", outboundSecretRef: "env:GW_HOOK_OUT", timeoutMs: 1_000 }
    ], env, { claimTtlMs: 2_000 })
  })
  afterAll(async () => {
    await gateway?.stop()
    await telegram.stop()
    await receiver.stop()
  })

  it("is healthy and ready once the feed answers and a provider is healthy; operator routes need the admin token", async () => {
    assert.deepStrictEqual(await (await fetch(`${gateway.url}/health`)).json(), { ok: true, status: "ok", mode: "cloud" })
    await until("ready", async () => (await fetch(`${gateway.url}/ready`)).status === 200)
    const ready = await (await fetch(`${gateway.url}/ready`)).json() as { providers: Array<{ id: string; state: string }> }
    assert.sameDeepMembers(ready.providers.map((p) => [p.id, p.state]), [["tg", "healthy"], ["hooks", "healthy"]])
    assert.strictEqual((await fetch(`${gateway.url}/metrics`)).status, 401)
    assert.strictEqual((await fetch(`${gateway.url}/diagnostics`, { headers: { authorization: "Bearer nope" } })).status, 401)
    const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: gateway.admin })).text()
    assert.include(metrics, "open_cowork_gateway_providers")
    assert.include(metrics, `open_cowork_gateway_provider_state{provider_id="tg",provider_kind="telegram",state="healthy",role="gateway"} 1`)
  })

  it("sends each delivery once with its idempotency key and acks it sent", async () => {
    const a = cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "reply one" })
    const b = cloud.add({ providerId: "tg", providerKind: "telegram", target: "1001", text: "reply two" })
    await receiver.waitForKeys(1)
    await telegram.waitForSends(1)
    await until("both acked sent", () => a.status === "sent" && b.status === "sent")
    assert.deepStrictEqual(receiver.received.map((r) => r.idempotencyKey), [a.idempotencyKey])
    assert.isTrue(receiver.received[0]!.signatureValid)
    assert.deepInclude(telegram.sends[0], { chatId: "1001", text: "reply two" })
    assert.strictEqual(await Effect.runPromise(gateway.metrics.read("open_cowork_gateway_deliveries_sent_total")), 2)
  })

  it("retries 500s and a 429 (honouring Retry-After) with the server's backoff, then dead-letters at the server's cap", async () => {
    receiver.inject({ kind: "status", status: 500 })
    receiver.inject({ kind: "status", status: 429, retryAfterSeconds: 1 })
    const flaky = cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "flaky" })
    await until("flaky sent", () => flaky.status === "sent")
    assert.strictEqual(flaky.attempts, 3)
    const faults = receiver.server.faultsServed.slice(-2)
    const delivered = receiver.received.find((r) => r.idempotencyKey === flaky.idempotencyKey)!
    assert.isAtLeast(delivered.at - faults[1]!.at, 900, "the 429's Retry-After delayed the next attempt")

    receiver.server.failAlways({ kind: "status", status: 503 })
    const doomed = cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "doomed" })
    await until("doomed dead", () => doomed.status === "dead")
    receiver.server.heal()
    assert.strictEqual(doomed.attempts, 4, "the cloud's cap, not the gateway's")
    assert.isAtLeast(await Effect.runPromise(gateway.metrics.read("open_cowork_gateway_delivery_dead_letters_total")), 1)
    assert.isAtLeast(await Effect.runPromise(gateway.metrics.read("open_cowork_gateway_provider_delivery_retries_total", { provider_id: "hooks", provider_kind: "webhook" })), 4)

    const gone = cloud.add({ providerId: "tg", providerKind: "telegram", target: "404", text: "no chat" })
    await until("a missing chat is dead at once", () => gone.status === "dead")
    assert.strictEqual(gone.attempts, 1)
  })

  it("lists deliveries and retries / dead-letters only those this gateway claimed", async () => {
    const listed = await (await fetch(`${gateway.url}/deliveries?status=dead`, { headers: gateway.admin })).json() as { deliveries: Array<{ id: string; status: string }> }
    assert.isAtLeast(listed.deliveries.length, 1)
    assert.isTrue(listed.deliveries.every((d) => d.status === "dead"))
    assert.strictEqual((await fetch(`${gateway.url}/deliveries?status=bogus`, { headers: gateway.admin })).status, 400)
    const dead = listed.deliveries.find((d) => cloud.deliveries.get(d.id)?.target === receiver.url)!
    const retried = await fetch(`${gateway.url}/deliveries/${dead.id}/retry`, { method: "POST", headers: gateway.admin })
    assert.strictEqual(retried.status, 200)
    await until("the retried delivery is sent", () => cloud.deliveries.get(dead.id)?.status === "sent")
    const foreign = cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "other binding", channelBindingId: "chb_other" })
    assert.strictEqual((await fetch(`${gateway.url}/deliveries/${foreign.id}/dead-letter`, { method: "POST", headers: gateway.admin })).status, 404)
    const all = await (await fetch(`${gateway.url}/deliveries`, { headers: gateway.admin })).json() as { deliveries: Array<{ id: string }> }
    assert.notInclude(all.deliveries.map((d) => d.id), foreign.id)
  })

  it("turns a signed webhook into one prompt; replays, bad signatures, stale timestamps and big bodies are refused", async () => {
    const post = (body: string, headers: Record<string, string>) =>
      fetch(`${gateway.url}/webhooks/hooks`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })
    const signed = (body: string, secret = HOOK_IN, ts = String(Math.floor(Date.now() / 1000))) => ({
      [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts,
      [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, ts, body)
    })
    const body = JSON.stringify({ eventId: "evt-1", target: "room-1", userId: "u-1", text: "hello gateway" })
    const headers = signed(body)
    assert.strictEqual((await post(body, headers)).status, 202)
    assert.strictEqual((await post(body, headers)).status, 409, "the same signature twice")
    const resent = await post(body, signed(body, HOOK_IN, String(Number(headers[InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]) - 1)))
    assert.deepStrictEqual([resent.status, await resent.json()], [200, { status: "duplicate" }], "the provider's retry of the same event")
    assert.strictEqual(cloud.prompts.filter((p) => p.message.providerEventId === "evt-1").length, 1)
    assert.strictEqual((await post(body, signed(body, "wrong"))).status, 401)
    assert.strictEqual((await post(body, signed(body, HOOK_IN, String(Math.floor(Date.now() / 1000) - 400)))).status, 401)
    assert.strictEqual((await post(body, {})).status, 401)
    const big = JSON.stringify({ eventId: "evt-big", target: "r", userId: "u", text: "x".repeat(1024 * 1024) })
    assert.strictEqual((await post(big, signed(big))).status, 413)
    assert.strictEqual((await fetch(`${gateway.url}/webhooks/nope`, { method: "POST", body: "{}" })).status, 404)

    // The cloud answers 503 once: the gateway answers 503 and releases the signature, so the provider's retry of
    // the very same signed request is accepted and prompts once; after that it is a replay.
    const during = JSON.stringify({ eventId: "evt-503", target: "room-1", userId: "u-1", text: "during an outage" })
    const duringHeaders = signed(during)
    cloud.failInbound = 1
    assert.strictEqual((await post(during, duringHeaders)).status, 503)
    assert.strictEqual(cloud.prompts.filter((p) => p.message.providerEventId === "evt-503").length, 0)
    assert.strictEqual((await post(during, duringHeaders)).status, 202, "the provider's retry of the same signed request")
    assert.strictEqual((await post(during, duringHeaders)).status, 409, "a replay once it was handled")
    assert.strictEqual(cloud.prompts.filter((p) => p.message.providerEventId === "evt-503").length, 1)

    const update = JSON.stringify({ update_id: 9001, message: { message_id: 1, chat: { id: 1001 }, from: { id: 7 }, text: "from telegram" } })
    const tg = await fetch(`${gateway.url}/webhooks/tg`, { method: "POST", headers: { [InboundSignatures.TELEGRAM_SECRET_HEADER]: "canary-tg-webhook-secret" }, body: update })
    assert.strictEqual(tg.status, 202)
    assert.deepInclude(cloud.prompts.at(-1)!.message, { providerEventId: "9001", externalTarget: "1001", text: "from telegram" })
  })

  it("never shows a credential in diagnostics, metrics or answers (canary)", async () => {
    const diagnostics = await (await fetch(`${gateway.url}/diagnostics`, { headers: gateway.admin })).text()
    const parsed = JSON.parse(diagnostics) as { deliveryOperator: Record<string, unknown>; config: { providers: Array<{ id: string }> } }
    assert.deepStrictEqual(parsed.deliveryOperator, {
      scope: "gateway", channelBindingIds: ["chb_1"], listAllowed: true, retryAllowed: true, deadLetterAllowed: true, disabledReason: null
    })
    assert.sameMembers(parsed.config.providers.map((p) => p.id), ["tg", "hooks"])
    const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: gateway.admin })).text()
    const lists = await (await fetch(`${gateway.url}/deliveries`, { headers: gateway.admin })).text()
    for (const text of [diagnostics, metrics, lists]) {
      for (const canary of [TG_TOKEN, "canary-gateway-telegram", HOOK_IN, HOOK_OUT, "canary-tg-webhook-secret", ADMIN_TOKEN]) {
        assert.notInclude(text, canary)
      }
    }
  })

  it("drains on shutdown and leaves no delivery claimed", async () => {
    await gateway.stop()
    const stuck = [...cloud.deliveries.values()].filter((d) => d.status === "claimed")
    assert.deepStrictEqual(stuck, [])
  })
})

describe("a provider whose credential is refused", () => {
  const telegram = new FakeTelegram(TG_TOKEN)
  const cloud = new MemoryCloud()
  let gateway: RunningGateway | undefined
  beforeAll(() => telegram.start())
  afterAll(async () => {
    await gateway?.stop()
    await telegram.stop()
  })

  it("is auth_failed in /ready and reported to the cloud as auth_required for its bindings", async () => {
    gateway = await startGateway(cloud, [
      { id: "tg-bad", kind: "telegram", botTokenRef: "env:GW_WRONG", apiRoot: telegram.apiRoot, timeoutMs: 1_000 }
    ], { GW_WRONG: "999:wrong-token" })
    await until("reported", () => cloud.statusReports.some((r) => r.providerId === "tg-bad" && r.status === "auth_required"))
    const ready = await fetch(`${gateway.url}/ready`)
    assert.strictEqual(ready.status, 503, "no usable provider")
    const body = await ready.json() as { providers: Array<{ id: string; state: string }> }
    assert.deepStrictEqual(body.providers.map((p) => [p.id, p.state]), [["tg-bad", "auth_failed"]])
  })
})

describe("a binding's own credential (credentialRef), resolved by the gateway", () => {
  const OWN = "canary-binding-own-webhook-secret"
  const ROTATED = "canary-binding-rotated-webhook-secret"
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "gw-credential-"))
  const cloud = new MemoryCloud({ bindings: ["chb_env", "chb_own", "chb_file", "chb_missing"], orgId: "org_gw_own" })
  // The org's namespace: its variables' prefix, its directory under OPEN_COWORK_GATEWAY_CREDENTIALS_DIR.
  const prefix = orgCredentialEnvPrefix(cloud.orgId)
  const file = Path.join(dir, cloud.orgId, "binding-secret")
  const shared = new WebhookReceiver(HOOK_OUT)
  const own = new WebhookReceiver(OWN)
  const rotated = new WebhookReceiver(ROTATED)
  const logs: Array<string> = []
  let gateway: RunningGateway | undefined
  beforeAll(async () => {
    await Promise.all([shared.start(), own.start(), rotated.start()])
    Fs.mkdirSync(Path.dirname(file))
    Fs.writeFileSync(file, `${OWN}\n`, { mode: 0o600 })
    cloud.credentialRefs.set("chb_own", `env:${prefix}OWN`)
    cloud.credentialRefs.set("chb_file", "file:binding-secret")
    cloud.credentialRefs.set("chb_missing", `env:${prefix}NOT_SET`)
    gateway = await startGateway(cloud, [
      { id: "hooks", kind: "webhook", inboundSecretRef: "env:GW_HOOK_IN", outboundSecretRef: "env:GW_HOOK_OUT", timeoutMs: 1_000 }
    ], env, { secretEnv: { ...env, [`${prefix}OWN`]: OWN }, credentialsDir: dir, credentialTtlMs: 100 }, logs)
  })
  afterAll(async () => {
    await gateway?.stop()
    await Promise.all([shared.stop(), own.stop(), rotated.stop()])
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("signs with the binding's credential (env: or file:), falls back to the provider's, picks up a rotated file, and never shows one", async () => {
    const viaEnv = cloud.add({ providerId: "hooks", providerKind: "webhook", target: shared.url, text: "provider credential", channelBindingId: "chb_env" })
    const viaOwn = cloud.add({ providerId: "hooks", providerKind: "webhook", target: own.url, text: "binding credential", channelBindingId: "chb_own" })
    const viaFile = cloud.add({ providerId: "hooks", providerKind: "webhook", target: own.url, text: "binding file credential", channelBindingId: "chb_file" })
    await until("three sent", () => [viaEnv, viaOwn, viaFile].every((d) => d.status === "sent"))
    assert.deepStrictEqual(shared.received.map((r) => [r.idempotencyKey, r.signatureValid]), [[viaEnv.idempotencyKey, true]])
    assert.sameDeepMembers(own.received.map((r) => [r.idempotencyKey, r.signatureValid]), [[viaOwn.idempotencyKey, true], [viaFile.idempotencyKey, true]])

    // Rotation: the mounted secret changes; once the resolved value is older than the TTL (100 ms here) the new one
    // signs, without a restart. Polled with a deadline: each round one delivery, sent, checked.
    Fs.writeFileSync(file, `${ROTATED}\n`)
    let rounds = 0
    await until("a delivery signed with the rotated secret", async () => {
      rounds++
      const probe = cloud.add({ providerId: "hooks", providerKind: "webhook", target: rotated.url, text: `after rotation ${rounds}`, channelBindingId: "chb_file" })
      await until("sent", () => probe.status === "sent")
      return rotated.received.find((r) => r.idempotencyKey === probe.idempotencyKey)?.signatureValid === true
    }, 10_000)

    // A reference this gateway cannot resolve: the delivery is retried (not sent unsigned or with another credential)
    // and the binding reported `error`, naming the reference, never a value.
    const unresolved = cloud.add({ providerId: "hooks", providerKind: "webhook", target: own.url, text: "no credential", channelBindingId: "chb_missing" })
    await until("reported error", () => cloud.bindingReports.some((r) => r.channelBindingId === "chb_missing" && r.status === "error"))
    assert.notStrictEqual(unresolved.status, "sent")
    assert.include(cloud.bindingReports.find((r) => r.channelBindingId === "chb_missing")!.detail ?? "", `${prefix}NOT_SET`)
    assert.isFalse(own.received.some((r) => r.idempotencyKey === unresolved.idempotencyKey))
    // Retried to the server's cap: its retries must not count into the next test's credential errors.
    await until("the unresolved delivery dead at the cap", () => unresolved.status === "dead")

    const shown = await assertNoCredentialShown(gateway!, cloud, logs, [OWN, ROTATED, "canary-binding"])
    assert.include(shown[1]!, `open_cowork_gateway_errors_total{operation="credential",role="gateway"}`)
  })

  it("verifies a binding's own inbound secret on /webhooks/:providerId/:bindingId; the provider's does not pass there; an unresolvable one is 503 and the binding's error", async () => {
    cloud.inboundCredentialRefs.set("chb_own", `env:${prefix}OWN`)
    cloud.inboundCredentialRefs.set("chb_missing", `env:${prefix}NOT_SET`)
    for (const id of ["chb_own", "chb_missing"]) cloud.bindingProviders.set(id, "hooks")
    const post = (path: string, eventId: string, secret: string, target = "chb_own") => {
      const body = JSON.stringify({ eventId, target, userId: "u-1", text: "own inbound" })
      const ts = String(Math.floor(Date.now() / 1000))
      return fetch(`${gateway!.url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts,
          [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, ts, body)
        },
        body
      })
    }
    assert.strictEqual((await post("/webhooks/hooks/chb_own", "own-in-1", OWN)).status, 202)
    assert.strictEqual(cloud.prompts.filter((p) => p.message.providerEventId === "own-in-1").length, 1)
    assert.strictEqual((await post("/webhooks/hooks/chb_own", "own-in-2", HOOK_IN)).status, 401, "the provider's secret on the binding's path")
    assert.strictEqual((await post("/webhooks/hooks/chb_env", "own-in-3", HOOK_IN)).status, 404, "a binding without its own inbound secret")
    assert.strictEqual((await post("/webhooks/other/chb_own", "own-in-4", OWN)).status, 404, "another provider id")
    // The binding-only rule, as the real cloud client applies it: the provider-wide secret naming the binding that has
    // its own is not admitted, nor its own secret naming another binding (each 200 unbound, nothing prompted).
    const providerWide = await post("/webhooks/hooks", "own-in-6", HOOK_IN)
    assert.deepStrictEqual([providerWide.status, await providerWide.json()], [200, { status: "unbound" }])
    const across = await post("/webhooks/hooks/chb_own", "own-in-7", OWN, "chb_1")
    assert.deepStrictEqual([across.status, await across.json()], [200, { status: "unbound" }])
    assert.deepStrictEqual(cloud.prompts.filter((p) => ["own-in-6", "own-in-7"].includes(p.message.providerEventId)), [])
    const credentialErrors = async () => {
      const text = await (await fetch(`${gateway!.url}/metrics`, { headers: gateway!.admin })).text()
      return Number(/open_cowork_gateway_errors_total\{operation="credential",role="gateway"\} (\d+)/.exec(text)?.[1] ?? 0)
    }
    const before = await credentialErrors()
    const missing = await post("/webhooks/hooks/chb_missing", "own-in-5", OWN)
    assert.strictEqual(missing.status, 503)
    assert.isNotNull(missing.headers.get("retry-after"))
    const report = cloud.bindingReports.filter((r) => r.channelBindingId === "chb_missing" && r.status === "error").at(-1)
    assert.include(report?.detail ?? "", "inboundCredentialRef")
    assert.strictEqual(await credentialErrors(), before + 1)
    const diagnostics = await (await fetch(`${gateway!.url}/diagnostics`, { headers: gateway!.admin })).text()
    assert.notInclude(diagnostics, OWN)
  })
})

describe("a binding's credentialRef is confined to its org's namespace (the org sets it; the gateway resolves it)", () => {
  const ORG_A_OWN = "canary-org-a-own-webhook-secret"
  const ORG_B_ENV = "canary-org-b-env-credential"
  const ORG_B_FILE = "canary-org-b-file-credential"
  const OUTSIDE_FILE = "canary-outside-file-credential"
  const GATEWAY_TOKEN = "occ_canary-gateway-own-token"
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "gw-credential-ns-"))
  const refused = ["chb_org_b_env", "chb_gateway_token", "chb_absolute", "chb_dotdot", "chb_org_b_file_name"] as const
  const cloud = new MemoryCloud({ bindings: ["chb_a_own", ...refused], orgId: "org_a" })
  const orgB = "org_a_5f"
  const receiver = new WebhookReceiver(ORG_A_OWN)
  const anyKey = new WebhookReceiver("not-a-key-any-delivery-here-signs-with")
  const logs: Array<string> = []
  let gateway: RunningGateway | undefined
  beforeAll(async () => {
    await Promise.all([receiver.start(), anyKey.start()])
    Fs.mkdirSync(Path.join(dir, "org_a"))
    Fs.mkdirSync(Path.join(dir, orgB))
    Fs.writeFileSync(Path.join(dir, orgB, "hook"), `${ORG_B_FILE}\n`)
    Fs.writeFileSync(Path.join(dir, "outside"), `${OUTSIDE_FILE}\n`)
    const prefixA = orgCredentialEnvPrefix("org_a")
    cloud.credentialRefs.set("chb_a_own", `env:${prefixA}HOOK`)
    cloud.credentialRefs.set("chb_org_b_env", `env:${orgCredentialEnvPrefix(orgB)}HOOK`)
    cloud.credentialRefs.set("chb_gateway_token", "env:OPEN_COWORK_GATEWAY_TOKEN")
    cloud.credentialRefs.set("chb_absolute", `file:${Path.join(dir, orgB, "hook")}`)
    cloud.credentialRefs.set("chb_dotdot", `file:../${orgB}/hook`)
    // A plain name that exists only in org B's directory: org A's directory has no such file.
    cloud.credentialRefs.set("chb_org_b_file_name", "file:hook")
    gateway = await startGateway(cloud, [
      { id: "hooks", kind: "webhook", inboundSecretRef: "env:GW_HOOK_IN", outboundSecretRef: "env:GW_HOOK_OUT", timeoutMs: 1_000 }
    ], env, {
      secretEnv: { ...env, [`${prefixA}HOOK`]: ORG_A_OWN, [`${orgCredentialEnvPrefix(orgB)}HOOK`]: ORG_B_ENV, OPEN_COWORK_GATEWAY_TOKEN: GATEWAY_TOKEN },
      credentialsDir: dir
    }, logs)
  })
  afterAll(async () => {
    await gateway?.stop()
    await Promise.all([receiver.stop(), anyKey.stop()])
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("refuses another org's variable or file, the gateway's own token, an absolute path and `..`; the org's own reference works; no value shows", async () => {
    const ownDelivery = cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "own", channelBindingId: "chb_a_own" })
    const attempts = refused.map((channelBindingId) =>
      cloud.add({ providerId: "hooks", providerKind: "webhook", target: anyKey.url, text: channelBindingId, channelBindingId })
    )
    await until("the own reference sent", () => ownDelivery.status === "sent")
    assert.deepStrictEqual(receiver.received.map((r) => [r.idempotencyKey, r.signatureValid]), [[ownDelivery.idempotencyKey, true]])
    await until("every refused binding reported error", () =>
      refused.every((id) => cloud.bindingReports.some((r) => r.channelBindingId === id && r.status === "error")))
    await until("every refused delivery failed with its reason", () => attempts.every((d) => d.lastError !== null))
    for (const delivery of attempts) {
      assert.notStrictEqual(delivery.status, "sent", delivery.channelBindingId)
      const detail = cloud.bindingReports.find((r) => r.channelBindingId === delivery.channelBindingId)!.detail ?? ""
      const expected = delivery.channelBindingId === "chb_org_b_file_name" ? "cannot read" : "refused"
      assert.include(detail, expected, delivery.channelBindingId)
      assert.include(delivery.lastError, expected, delivery.channelBindingId)
    }
    assert.strictEqual(anyKey.received.length, 0, "nothing sent with a credential outside the org's namespace")

    const [diagnostics] = await assertNoCredentialShown(gateway!, cloud, logs, [ORG_A_OWN, ORG_B_ENV, ORG_B_FILE, OUTSIDE_FILE, GATEWAY_TOKEN, "canary-"])
    assert.strictEqual((JSON.parse(diagnostics!) as { config: { credentialsDir: string } }).config.credentialsDir, dir)
  })
})

describe("webhook targets resolving to non-public addresses (SSRF)", () => {
  const receiver = new WebhookReceiver(HOOK_OUT)
  const providers = [{ id: "hooks", kind: "webhook", inboundSecretRef: "env:GW_HOOK_IN", outboundSecretRef: "env:GW_HOOK_OUT", timeoutMs: 1_000 }]
  const { OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: _allowed, ...noAllowList } = env
  let refusing: RunningGateway | undefined
  let allowing: RunningGateway | undefined
  beforeAll(() => receiver.start())
  afterAll(async () => {
    await refusing?.stop()
    await allowing?.stop()
    await receiver.stop()
  })

  it("are dead at the first attempt with the refusal (never the URL's path) and the binding's error; nothing reaches the receiver unless allowed", async () => {
    const cloud = new MemoryCloud({ maxAttempts: 4, baseBackoffMs: 20 })
    refusing = await startGateway(cloud, providers, noAllowList, { claimTtlMs: 2_000 })
    const port = new URL(receiver.url).port
    const targets: ReadonlyArray<readonly [target: string, range: string]> = [
      [`${receiver.url}?token=canary-ssrf-path-token`, "loopback"],
      [`http://localhost:${port}/hook`, "loopback"],
      [`http://[::1]:${port}/hook`, "loopback"],
      ["http://10.1.2.3/hook", "private"],
      ["http://169.254.169.254/latest/meta-data/", "link-local"],
      [`http://[::ffff:127.0.0.1]:${port}/hook`, "loopback"]
    ]
    const deliveries = targets.map(([target]) => cloud.add({ providerId: "hooks", providerKind: "webhook", target, text: "internal" }))
    await until("every refused target dead", () => deliveries.every((d) => d.status === "dead"))
    deliveries.forEach((delivery, index) => {
      assert.strictEqual(delivery.attempts, 1, "not retried")
      assert.include(delivery.lastError, "webhook target refused")
      assert.include(delivery.lastError, `${targets[index]![1]} address`)
      assert.include(delivery.lastError, "OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS")
      assert.notInclude(delivery.lastError, "canary-ssrf-path-token")
    })
    assert.strictEqual(receiver.received.length, 0)
    assert.strictEqual(receiver.server.requests.length, 0, "no request reached the loopback receiver")
    assert.deepInclude(cloud.bindingReports.map((r) => r.status), "error")
    assert.include(cloud.bindingReports.find((r) => r.status === "error")!.detail, "webhook target refused")
    const ready = await (await fetch(`${refusing.url}/ready`)).json() as { providers: Array<{ id: string; state: string }> }
    assert.deepStrictEqual(ready.providers.map((p) => [p.id, p.state]), [["hooks", "healthy"]], "one binding's target is not the provider's problem")

    // The operator allows the loopback host: the same target is delivered.
    const allowedCloud = new MemoryCloud({ maxAttempts: 4, baseBackoffMs: 20 })
    allowing = await startGateway(allowedCloud, providers, env, { claimTtlMs: 2_000 })
    const delivered = allowedCloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "allowed" })
    await receiver.waitForKeys(1)
    await until("allowed target sent", () => delivered.status === "sent")
    assert.deepStrictEqual(receiver.received.map((r) => r.idempotencyKey), [delivered.idempotencyKey])
  })
})
