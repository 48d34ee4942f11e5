import { type EventDraft, orgCredentialEnvPrefix } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { PgLeaseStore } from "@cowork/postgres"
import { EventLog, LeaseStore, Quotas, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { baseUrl, layer, orgWithToken, request } from "./support/WebTestServer.ts"

/**
 * `/api/channels/...` over HTTP on Postgres (issue 11): bindings (credentials by reference only), gateway tokens
 * limited to their bindings, inbound prompts once per provider event, the delivery feed (claim / fenced ack / attempt
 * cap / retry / dead-letter) and its wake-up stream.
 */

/** A Telegram bot token's shape (`<bot id>:AA` + 33 characters). */
const CANARY = `7710042123:AA${"Hcanary".padEnd(33, "q")}`

const reply = (text: string): EventDraft => ({ type: "assistant.message", payload: { messageId: `m-${text}`, text, final: true } })

/** An org (admin token) with two telegram bindings and a gateway token for the first only. */
const setup = Effect.gen(function*() {
  const { orgId, token: admin } = yield* orgWithToken(["web", "admin"])
  const create = (target: string) =>
    request("POST", "/api/channels/bindings", {
      token: admin,
      body: { providerKind: "telegram", providerId: "tg-main", displayName: `chat ${target}`, externalTarget: target, credentialRef: "file:telegram-bot-token" }
    })
  const a = yield* create("-1001")
  assert.strictEqual(a.status, 201, JSON.stringify(a.body))
  const b = yield* create("-1002")
  const issued = yield* request("POST", "/api/channels/gateway-tokens", {
    token: admin,
    body: { name: "gw", channelBindingIds: [a.body.binding.id] }
  })
  assert.strictEqual(issued.status, 201, JSON.stringify(issued.body))
  assert.deepStrictEqual(issued.body.token.scopes, ["gateway"])
  return { orgId, admin, a: a.body.binding.id as string, b: b.body.binding.id as string, gateway: issued.body.secret as string }
})

/** Appends `drafts` to the session as its worker would (a lease over its pending prompt). */
const appendAsWorker = (sessionId: string, drafts: ReadonlyArray<EventDraft>) =>
  Effect.gen(function*() {
    const leases = yield* (yield* LeaseStore).claim(`w-${sessionId}-${globalThis.crypto.randomUUID().slice(0, 6)}`, 100, 30_000, 3)
    const lease = leases.find((l) => l.sessionId === sessionId)
    assert.isDefined(lease, "the session is claimable")
    yield* (yield* EventLog).append(lease!, drafts)
  }).pipe(Effect.provide(PgLeaseStore.layer), Effect.orDie)

const expireClaims = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`UPDATE cloud_channel_deliveries SET claim_expires_at = now() - interval '1 second' WHERE status = 'claimed'`)
  yield* sql.unsafe(`UPDATE cloud_channel_deliveries SET next_attempt_at = now() - interval '1 second' WHERE status = 'failed'`)
}).pipe(Effect.orDie)

it.layer(layer, { excludeTestServices: true })("channels API", (it) => {
  it.effect("a gateway token reaches only its bindings and nothing outside its routes; another org's binding is 404", () =>
    Effect.gen(function*() {
      const { admin, a, b, gateway } = yield* setup
      const other = yield* setup
      const listed = yield* request("GET", "/api/channels/bindings", { token: gateway })
      assert.deepStrictEqual(listed.body.bindings.map((x: { id: string }) => x.id), [a])
      assert.strictEqual((yield* request("GET", `/api/channels/bindings/${b}`, { token: gateway })).status, 404)
      assert.strictEqual((yield* request("GET", `/api/channels/bindings/${a}`, { token: gateway })).status, 200)
      assert.strictEqual((yield* request("GET", `/api/channels/deliveries?channelBindingId=${b}`, { token: gateway })).status, 404)
      assert.strictEqual((yield* request("GET", `/api/channels/cursors?channelBindingId=${b}`, { token: gateway })).status, 404)
      const claimB = yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: { channelBindingId: b, providerEventId: "u1" } })
      assert.strictEqual(claimB.status, 404)
      const promptB = yield* request("POST", `/api/channels/bindings/${b}/prompt`, {
        token: gateway,
        body: { providerEventId: "u1", externalThreadId: "t", externalUserId: "u", text: "hi" }
      })
      assert.strictEqual(promptB.status, 404)
      // Least privilege: nothing but its channel routes.
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: gateway })).status, 403)
      assert.strictEqual((yield* request("POST", "/api/channels/bindings", { token: gateway, body: {} })).status, 403)
      assert.strictEqual((yield* request("POST", "/api/channels/gateway-tokens", { token: gateway, body: {} })).status, 403)
      assert.strictEqual((yield* request("GET", "/api/api-tokens", { token: gateway })).status, 403)
      const grant = yield* request("GET", "/api/channels/gateway", { token: gateway })
      assert.deepInclude(grant.body, { scope: "gateway", channelBindingIds: [a], retryAllowed: true })
      // Another org: 404 for its admin too.
      assert.strictEqual((yield* request("GET", `/api/channels/bindings/${a}`, { token: other.admin })).status, 404)
      assert.strictEqual((yield* request("GET", `/api/channels/bindings/${a}`, { token: other.gateway })).status, 404)
      const tokens = yield* request("GET", "/api/channels/gateway-tokens", { token: admin })
      assert.deepStrictEqual(tokens.body.tokens.map((t: { channelBindingIds: Array<string> }) => t.channelBindingIds), [[a]])
    }))

  it.effect("credentials go by reference: a plaintext credential is refused without an echo, and no read ever shows one (canary)", () =>
    Effect.gen(function*() {
      const { admin, a, gateway } = yield* setup
      const refused = yield* request("POST", "/api/channels/bindings", {
        token: admin,
        body: { providerKind: "telegram", providerId: "tg-x", displayName: "x", externalTarget: "-9", credentialRef: CANARY }
      })
      assert.strictEqual(refused.status, 400)
      assert.strictEqual(refused.body.error.details.field, "credentialRef")
      const inSettings = yield* request("PATCH", `/api/channels/bindings/${a}`, { token: admin, body: { settings: { botToken: CANARY } } })
      assert.strictEqual(inSettings.status, 400)
      const statusDetail = yield* request("POST", `/api/channels/bindings/${a}/status`, {
        token: gateway,
        body: { status: "auth_required", detail: `telegram said 401 for https://api.telegram.org/bot${CANARY}/getMe` }
      })
      assert.strictEqual(statusDetail.status, 200)
      assert.strictEqual(statusDetail.body.binding.status, "auth_required")
      const reads = [
        ...[refused, inSettings, statusDetail].map((r) => JSON.stringify(r.body)),
        ...(yield* Effect.forEach(
          ["/api/channels/bindings", `/api/channels/bindings/${a}`, "/api/channels/deliveries", "/api/channels/gateway", "/api/channels/cursors", "/api/channels/gateway-tokens"],
          (path) => Effect.map(request("GET", path, { token: admin }), (r) => JSON.stringify(r.body))
        ))
      ]
      for (const read of reads) assert.notInclude(read, "Hcanaryqq", "no API read carries the credential")
      assert.include(reads.join(""), "file:telegram-bot-token", "the reference is shown")
    }))

  it.effect("a credentialRef outside the org's namespace is refused at store time (400 naming credentialRef, no echo); the binding's org is shown to its gateway token", () =>
    Effect.gen(function*() {
      const { orgId, admin, a, gateway } = yield* setup
      const other = yield* setup
      const own = `${orgCredentialEnvPrefix(orgId)}TG_BOT`
      const refusedRefs = [
        `env:${orgCredentialEnvPrefix(other.orgId)}TG_BOT`, // another org's variable
        "env:OPEN_COWORK_GATEWAY_TOKEN", // the gateway's own token
        `env:${orgCredentialEnvPrefix(orgId)}`, // the bare prefix names nothing
        "file:/etc/passwd",
        "file:../other-org/token",
        "file:..",
        "file:sub/token",
        "vault://kv/tg",
        "env:CANARY_STORE_TIME-ref"
      ]
      for (const credentialRef of refusedRefs) {
        const created = yield* request("POST", "/api/channels/bindings", {
          token: admin,
          body: { providerKind: "telegram", providerId: "tg-ns", displayName: "ns", externalTarget: "-77", credentialRef }
        })
        assert.strictEqual(created.status, 400, `${credentialRef}: ${JSON.stringify(created.body)}`)
        assert.strictEqual(created.body.error.details.field, "credentialRef", credentialRef)
        const patched = yield* request("PATCH", `/api/channels/bindings/${a}`, { token: admin, body: { credentialRef } })
        assert.strictEqual(patched.status, 400, credentialRef)
        assert.strictEqual(patched.body.error.details.field, "credentialRef", credentialRef)
        if (credentialRef.startsWith("env:") && !credentialRef.includes(orgCredentialEnvPrefix(orgId))) {
          assert.notInclude(JSON.stringify([created.body, patched.body]), credentialRef.slice(4), "the reference is not echoed")
        }
      }
      const wrongOrg = yield* request("PATCH", `/api/channels/bindings/${a}`, { token: admin, body: { credentialRef: refusedRefs[0] } })
      assert.include(wrongOrg.body.error.message, orgCredentialEnvPrefix(orgId), "the refusal names the org's own prefix")
      for (const credentialRef of [`env:${own}`, "file:tg-bot.token", null]) {
        const accepted = yield* request("PATCH", `/api/channels/bindings/${a}`, { token: admin, body: { credentialRef } })
        assert.strictEqual(accepted.status, 200, JSON.stringify(accepted.body))
        assert.strictEqual(accepted.body.binding.credentialRef, credentialRef)
      }
      const listed = yield* request("GET", "/api/channels/bindings", { token: gateway })
      assert.deepStrictEqual(listed.body.bindings.map((b: { id: string; orgId: string }) => [b.id, b.orgId]), [[a, orgId]])
      assert.strictEqual((yield* request("GET", `/api/channels/bindings/${a}`, { token: other.gateway })).status, 404)
    }))

  it.effect("an inbound message prompts the thread's session once per provider event; provider-event and signature claims are durable", () =>
    Effect.gen(function*() {
      const { admin, a, gateway } = yield* setup
      const message = { providerEventId: "upd-1", externalThreadId: "chat-7", externalUserId: "user-9", text: "status?" }
      const claim = yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: { channelBindingId: a, providerEventId: "upd-1" } })
      assert.deepInclude(claim.body, { status: "claimed" })
      const again = yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: { channelBindingId: a, providerEventId: "upd-1" } })
      assert.deepInclude(again.body, { status: "in_progress", claimToken: null }, "a second replica does not process it")
      const first = yield* request("POST", `/api/channels/bindings/${a}/prompt`, { token: gateway, body: message })
      assert.strictEqual(first.status, 202, JSON.stringify(first.body))
      assert.deepInclude(first.body, { sessionCreated: true, duplicate: false })
      const retried = yield* request("POST", `/api/channels/bindings/${a}/prompt`, { token: gateway, body: message })
      assert.deepInclude(retried.body, { sessionId: first.body.sessionId, commandId: first.body.commandId, duplicate: true })
      const next = yield* request("POST", `/api/channels/bindings/${a}/prompt`, { token: gateway, body: { ...message, providerEventId: "upd-2" } })
      assert.deepInclude(next.body, { sessionId: first.body.sessionId, sessionCreated: false, duplicate: false })
      const view = yield* request("GET", `/api/sessions/${first.body.sessionId}/view`, { token: admin })
      assert.strictEqual(view.body.messages.filter((m: { role: string }) => m.role === "user").length, 2, "two prompts, not three")

      const done = yield* request("POST", "/api/channels/provider-events/complete", {
        token: gateway,
        body: { channelBindingId: a, providerEventId: "upd-1", claimToken: claim.body.claimToken, outcome: "prompted" }
      })
      assert.deepInclude(done.body, { status: "completed", outcome: "prompted" })
      const late = yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: { channelBindingId: a, providerEventId: "upd-1" } })
      assert.deepInclude(late.body, { status: "completed" })
      const stale = yield* request("POST", "/api/channels/provider-events/complete", {
        token: gateway,
        body: { channelBindingId: a, providerEventId: "upd-1", claimToken: claim.body.claimToken, outcome: "prompted" }
      })
      assert.strictEqual(stale.status, 409)

      const signature = { channelBindingId: a, providerEventId: "sig-0123abcd", kind: "signature" }
      const signed = yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: signature })
      assert.deepInclude(signed.body, { status: "claimed" })
      assert.deepInclude((yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: signature })).body, { status: "in_progress" })
      const accepted = yield* request("POST", "/api/channels/provider-events/complete", {
        token: gateway,
        body: { channelBindingId: a, providerEventId: "sig-0123abcd", claimToken: signed.body.claimToken, outcome: "accepted" }
      })
      assert.deepInclude(accepted.body, { status: "completed", outcome: "accepted" })
      assert.deepInclude((yield* request("POST", "/api/channels/provider-events/claim", { token: gateway, body: signature })).body, { status: "completed" })

      // linked_only: an unlinked user is refused; once linked to a member, admitted.
      yield* request("PATCH", `/api/channels/bindings/${a}`, { token: admin, body: { inboundPolicy: "linked_only" } })
      const refused = yield* request("POST", `/api/channels/bindings/${a}/prompt`, { token: gateway, body: { ...message, providerEventId: "upd-3" } })
      assert.strictEqual(refused.status, 403)
      const resolved = yield* request("POST", "/api/channels/identities/resolve", { token: gateway, body: { channelBindingId: a, externalUserId: "user-9" } })
      assert.deepStrictEqual(resolved.body, { identity: null, principal: null, mayPrompt: false })
    }))

  it.effect("deliveries: claim, fenced ack after expiry is 409, the server's attempt cap makes it dead, admins retry and dead-letter", () =>
    Effect.gen(function*() {
      const { admin, a, gateway, orgId } = yield* setup
      const prompted = yield* request("POST", `/api/channels/bindings/${a}/prompt`, {
        token: gateway,
        body: { providerEventId: "u-1", externalThreadId: "chat-1", externalUserId: "user-1", text: "hi" }
      })
      yield* appendAsWorker(prompted.body.sessionId, [reply("hello back")])
      const claimed = yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: { limit: 5, claimTtlMs: 30_000, gatewayId: "gw-a" } })
      assert.strictEqual(claimed.status, 200, JSON.stringify(claimed.body))
      assert.strictEqual(claimed.body.deliveries.length, 1)
      const delivery = claimed.body.deliveries[0]
      assert.deepInclude(delivery, { channelBindingId: a, externalThreadId: "chat-1", kind: "message", status: "claimed", attempts: 1, lastClaimedReplica: "gw-a" })
      assert.strictEqual(delivery.payload.text, "hello back")

      yield* expireClaims
      const late = yield* request("POST", `/api/channels/deliveries/${delivery.id}/ack`, { token: gateway, body: { claimToken: delivery.claimToken, outcome: "sent" } })
      assert.strictEqual(late.status, 409)
      assert.deepInclude(late.body.error.details, { kind: "delivery", reason: "expired" })

      // Each claim is an attempt; failed acks never go past the server's cap (8 by default).
      let last: any
      for (let attempt = 0; attempt < 20; attempt++) {
        yield* expireClaims
        const next = yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: {} })
        if (next.body.deliveries.length === 0) break
        const held = next.body.deliveries[0]
        last = (yield* request("POST", `/api/channels/deliveries/${held.id}/ack`, {
          token: gateway,
          body: { claimToken: held.claimToken, outcome: "failed", error: `500 from https://user:${CANARY}@hooks.example/x` }
        })).body.delivery
      }
      assert.deepInclude(last, { status: "dead", attempts: 8, maxAttempts: 8 })
      assert.notInclude(last.lastError, "Hcanaryqq", "the stored error is redacted")

      const listed = yield* request("GET", `/api/channels/deliveries?status=dead&channelBindingId=${a}`, { token: admin })
      assert.deepStrictEqual(listed.body.deliveries.map((d: { id: string }) => d.id), [delivery.id])
      const retried = yield* request("POST", `/api/channels/deliveries/${delivery.id}/retry`, { token: admin })
      assert.deepInclude(retried.body.delivery, { status: "pending", attempts: 0 })
      const dead = yield* request("POST", `/api/channels/deliveries/${delivery.id}/dead-letter`, { token: admin, body: { reason: "chat removed" } })
      assert.deepInclude(dead.body.delivery, { status: "dead", lastError: "chat removed" })
      const operator = Redacted.value((yield* (yield* Tokens).issue({ orgId, name: "ops", scopes: ["operator"] }).pipe(Effect.orDie)).token)
      const diagnostics = yield* request("GET", "/api/diagnostics", { token: operator })
      assert.deepInclude(diagnostics.body.gateway, { status: "active" })
      assert.deepInclude(diagnostics.body.gateway.deliveries, { dead: 1, pending: 0 })
      const exposition = (yield* request("GET", "/api/metrics", { token: operator })).body as string
      for (const series of [
        /open_cowork_cloud_channel_claim_lost_total\{kind="delivery"[^}]*\} [1-9]/,
        /open_cowork_cloud_channel_delivery_acks_total\{status="dead"[^}]*\} [1-9]/,
        /open_cowork_cloud_channel_deliveries_claimed_total\{[^}]*\} [1-9]/
      ]) assert.match(exposition, series)
      const other = yield* setup
      assert.strictEqual((yield* request("POST", `/api/channels/deliveries/${delivery.id}/retry`, { token: other.admin })).status, 404)
      assert.strictEqual((yield* request("GET", `/api/channels/deliveries/${delivery.id}`, { token: other.gateway })).status, 404)
    }))

  it.effect("deliveries: acks in one batch, each fenced on its own — an expired claim is claim_lost, another org's delivery not_found, the others taken", () =>
    Effect.gen(function*() {
      const { a, gateway } = yield* setup
      const prompted = yield* request("POST", `/api/channels/bindings/${a}/prompt`, {
        token: gateway,
        body: { providerEventId: "batch-1", externalThreadId: "chat-b", externalUserId: "user-1", text: "hi" }
      })
      yield* appendAsWorker(prompted.body.sessionId, [reply("one"), reply("two"), reply("three")])
      const first = (yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: { limit: 1 } })).body.deliveries
      assert.strictEqual(first.length, 1)
      yield* expireClaims
      const held = (yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: { limit: 5 } })).body.deliveries
      const stale = first[0]
      const fresh = held.filter((d: { id: string }) => d.id !== stale.id)
      assert.strictEqual(fresh.length, 2)
      const other = yield* setup
      const otherPrompt = yield* request("POST", `/api/channels/bindings/${other.a}/prompt`, {
        token: other.gateway,
        body: { providerEventId: "batch-x", externalThreadId: "chat-x", externalUserId: "user-1", text: "hi" }
      })
      yield* appendAsWorker(otherPrompt.body.sessionId, [reply("theirs")])
      const theirs = (yield* request("POST", "/api/channels/deliveries/claim", { token: other.gateway, body: {} })).body.deliveries[0]
      const acked = yield* request("POST", "/api/channels/deliveries/ack", {
        token: gateway,
        body: {
          acks: [
            { id: fresh[0].id, claimToken: fresh[0].claimToken, outcome: "sent" },
            { id: stale.id, claimToken: stale.claimToken, outcome: "sent" },
            { id: theirs.id, claimToken: theirs.claimToken, outcome: "sent" },
            { id: fresh[1].id, claimToken: fresh[1].claimToken, outcome: "failed", error: "503", retryAfterMs: 60_000 }
          ]
        }
      })
      assert.strictEqual(acked.status, 200, JSON.stringify(acked.body))
      assert.deepStrictEqual(acked.body.results.map((r: any) => [r.id, r.delivery?.status ?? null, r.refused]), [
        [fresh[0].id, "sent", null],
        [stale.id, null, "claim_lost"],
        [theirs.id, null, "not_found"],
        [fresh[1].id, "failed", null]
      ])
      assert.isAbove(Date.parse(acked.body.results[3].delivery.nextAttemptAt), Date.now() + 50_000, "Retry-After honoured")
      assert.deepInclude((yield* request("GET", `/api/channels/deliveries/${theirs.id}`, { token: other.gateway })).body.delivery, { status: "claimed" })
      // Bounded: no acks is 400, more than 100 is 400, both naming the field.
      for (const acks of [[], Array.from({ length: 101 }, () => ({ id: stale.id, claimToken: stale.claimToken, outcome: "sent" }))]) {
        const refused = yield* request("POST", "/api/channels/deliveries/ack", { token: gateway, body: { acks } })
        assert.strictEqual(refused.status, 400)
        assert.include(JSON.stringify(refused.body), "acks")
      }
    }))

  it.effect("inbound in one request: prompts once per provider event, a signature once; a refusal is done for good; a 429 releases both claims so the retry is taken; another org's binding is 404", () =>
    Effect.gen(function*() {
      const { admin, a, gateway, orgId } = yield* setup
      const send = (providerEventId: string, signatureKey?: string) =>
        request("POST", `/api/channels/bindings/${a}/inbound`, {
          token: gateway,
          body: { providerEventId, externalThreadId: "chat-in", externalUserId: "user-1", text: `hello ${providerEventId}`, ...(signatureKey === undefined ? {} : { signatureKey }) }
        })
      const first = yield* send("in-1", "sig-1")
      assert.strictEqual(first.status, 200, JSON.stringify(first.body))
      assert.strictEqual(first.body.status, "prompted")
      assert.match(first.body.sessionId, /^ses_/)
      assert.deepStrictEqual((yield* send("in-1", "sig-1")).body, { status: "replayed", sessionId: null }, "the same signed request again")
      assert.deepStrictEqual((yield* send("in-1", "sig-2")).body, { status: "duplicate", sessionId: null }, "the same event, signed anew")
      const commands = yield* (yield* SqlClient.SqlClient)<{ n: number }>`SELECT count(*)::int AS n FROM cloud_session_commands WHERE session_id = ${first.body.sessionId}`.pipe(Effect.orDie)
      assert.strictEqual(commands[0]!.n, 1, "one prompt")

      // Past the org's prompt quota: 429, nothing kept — the provider's retry of the same signed request is taken later.
      yield* (yield* Quotas).setOverride(orgId, "prompts_per_hour", 1)
      assert.strictEqual((yield* send("in-2", "sig-3")).status, 429)
      yield* (yield* Quotas).setOverride(orgId, "prompts_per_hour", 1_000)
      assert.deepInclude((yield* send("in-2", "sig-3")).body, { status: "prompted" })

      // A disabled binding refuses: done for good (its retry is a duplicate, not a prompt).
      assert.strictEqual((yield* request("PATCH", `/api/channels/bindings/${a}`, { token: admin, body: { status: "disabled" } })).status, 200)
      assert.deepStrictEqual((yield* send("in-3", "sig-4")).body, { status: "refused", sessionId: null })
      assert.deepStrictEqual((yield* send("in-3", "sig-5")).body, { status: "duplicate", sessionId: null })

      const other = yield* setup
      const theirs = yield* request("POST", `/api/channels/bindings/${other.a}/inbound`, {
        token: gateway,
        body: { providerEventId: "in-x", externalThreadId: "chat-x", externalUserId: "user-1", text: "hi" }
      })
      assert.strictEqual(theirs.status, 404)
      const tooLong = yield* request("POST", `/api/channels/bindings/${a}/inbound`, {
        token: gateway,
        body: { providerEventId: "in-4", externalThreadId: "chat-in", externalUserId: "user-1", text: "x", signatureKey: "s".repeat(10_000) }
      })
      assert.strictEqual(tooLong.status, 400)
      assert.include(JSON.stringify(tooLong.body), "signatureKey")
    }))

  it.effect("channel_deliveries_per_hour: the claim leaves first attempts past the org's quota pending and counts each as a rejection", () =>
    Effect.gen(function*() {
      const { a, gateway, orgId } = yield* setup
      yield* (yield* Quotas).setOverride(orgId, "channel_deliveries_per_hour", 1)
      const prompted = yield* request("POST", `/api/channels/bindings/${a}/prompt`, {
        token: gateway,
        body: { providerEventId: "q-1", externalThreadId: "chat-q", externalUserId: "user-1", text: "hi" }
      })
      yield* appendAsWorker(prompted.body.sessionId, [reply("one"), reply("two")])
      const metrics = yield* Metrics
      const before = yield* metrics.read("open_cowork_cloud_quota_rejections_total", { quota: "channel_deliveries_per_hour" })
      const claimed = yield* request("POST", "/api/channels/deliveries/claim", { token: gateway, body: { limit: 5 } })
      assert.strictEqual(claimed.status, 200, JSON.stringify(claimed.body))
      assert.strictEqual(claimed.body.deliveries.length, 1)
      assert.strictEqual((yield* metrics.read("open_cowork_cloud_quota_rejections_total", { quota: "channel_deliveries_per_hour" })) - before, 1)
      const pending = yield* request("GET", "/api/channels/deliveries?status=pending", { token: gateway })
      assert.strictEqual(pending.body.deliveries.length, 1, "the other waits for the next hour, still pending")
      assert.isAbove(Date.parse(pending.body.deliveries[0].nextAttemptAt), Date.now())
    }))

  it.effect("a connected gateway is woken by the delivery stream when its binding gets a delivery", () =>
    Effect.gen(function*() {
      const { a, gateway } = yield* setup
      const prompted = yield* request("POST", `/api/channels/bindings/${a}/prompt`, {
        token: gateway,
        body: { providerEventId: "u-1", externalThreadId: "chat-1", externalUserId: "user-1", text: "hi" }
      })
      const url = `${yield* baseUrl}/api/channels/deliveries/stream`
      const controller = new AbortController()
      const response = yield* Effect.promise(() => fetch(url, { headers: { authorization: `Bearer ${gateway}` }, signal: controller.signal }))
      assert.strictEqual(response.status, 200)
      const reader = response.body!.getReader()
      let text = ""
      // ONE read in flight at a time: a read abandoned to a timer would still take the next chunk, and lose it.
      let read: Promise<ReadableStreamReadResult<Uint8Array>> | undefined
      /** Reads until `needle` appears after offset `from` of everything read; false after `deadlineMs`. */
      const readUntil = (needle: string, deadlineMs: number, from = 0) =>
        Effect.promise(async () => {
          const deadline = Date.now() + deadlineMs
          while (!text.slice(from).includes(needle)) {
            const left = deadline - Date.now()
            if (left <= 0) return false
            read ??= reader.read()
            const chunk = await Promise.race([read, new Promise<undefined>((r) => setTimeout(() => r(undefined), left))])
            if (chunk === undefined) continue
            read = undefined
            if (chunk.done) return false
            text += new TextDecoder().decode(chunk.value)
          }
          return true
        })
      assert.isTrue(yield* readUntil(`data: {"channelBindingId":"${a}"}`, 5_000), "the opening wake-up")
      const before = text.length
      yield* appendAsWorker(prompted.body.sessionId, [reply("pong")])
      const woke = yield* readUntil("event: delivery.available", 10_000, before)
      controller.abort()
      assert.isTrue(woke, `a wake-up after the reply; got ${JSON.stringify(text.slice(before))}`)
    }))
})
