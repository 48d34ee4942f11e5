import { assert, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { WebhookReceiver } from "../../../../packages/channels/test/support/WebhookReceiver.ts"
import { cloudLayer, createBinding, http, issueGatewayToken, orgAdmin, startGateway, startWorker, until } from "./GatewayStack.ts"

/**
 * A provider that fails: 500s, a 429 with Retry-After and a timeout are retried with the server's backoff until the
 * provider answers; a provider that keeps failing dead-letters at the server's attempt cap (4 here). Sessions keep
 * running meanwhile. Web + worker on the memory stack with a short server backoff (base 100 ms).
 */
const MAX_ATTEMPTS = 4

it.layer(cloudLayer({ maxAttempts: MAX_ATTEMPTS, backoffBaseMs: 100, backoffMaxMs: 2_000 }), { timeout: 120_000, excludeTestServices: true })("gateway delivery faults", (it) => {
  it.effect("retries 500 / 429 Retry-After / timeout with backoff, then dead-letters at the server's cap while the session keeps running", () =>
    Effect.gen(function*() {
      const receiver = new WebhookReceiver()
      yield* Effect.promise(() => receiver.start())
      yield* Effect.addFinalizer(() => Effect.promise(() => receiver.stop()))
      const { token: admin, url, api } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "webhook", providerId: "hooks", externalTarget: receiver.url })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-faults")
      const gateway = yield* startGateway(url, gatewayToken, [{ id: "hooks", kind: "webhook", timeoutMs: 800 }], {})

      const { session } = yield* api.sessions.create({ payload: { title: "faults" } })
      const bound = yield* http("POST", `${url}/api/channels/bindings/${binding.id}/sessions`, admin, { externalThreadId: "t1", sessionId: session.id })
      assert.strictEqual(bound.status, 201, JSON.stringify(bound.body))
      const deliveries = (status?: string) =>
        Effect.map(http("GET", `${url}/api/channels/deliveries${status === undefined ? "" : `?status=${status}`}`, admin), (r) =>
          r.body.deliveries as Array<{ id: string; status: string; attempts: number; lastError: string | null; idempotencyKey: string }>)

      // A flaky provider: 500, then 429 with Retry-After: 1, then no answer within the timeout, then OK.
      receiver.inject({ kind: "status", status: 500 })
      receiver.inject({ kind: "status", status: 429, retryAfterSeconds: 1 })
      receiver.inject({ kind: "hang" })
      yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "first reply" } })
      yield* Effect.promise(() => receiver.waitForKeys(1, 30_000))
      const first = yield* until("the flaky delivery acked sent", Effect.map(deliveries("sent"), (list) => list[0]))
      assert.strictEqual(first.attempts, 4, "500, 429, timeout, then sent")
      assert.strictEqual(receiver.received.length, 1)
      const faults = receiver.server.faultsServed
      assert.strictEqual(faults.length, 2)
      const afterRetryAfter = receiver.received[0]!.at - faults[1]!.at
      assert.isAtLeast(afterRetryAfter, 1_000 - 50, "the 429's Retry-After was honoured (plus the timeout)")

      // A dead provider: every attempt fails; the session keeps answering meanwhile.
      receiver.server.failAlways({ kind: "status", status: 503 })
      yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "second reply" } })
      yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "third reply" } })
      const view = yield* until("both prompts answered while the provider is down", Effect.map(
        api.sessions.view({ params: { id: session.id }, query: {} }).pipe(Effect.orDie),
        (v) => v.status === "idle" && v.messages.filter((m) => m.role === "assistant").length >= 3 ? v : undefined
      ), 30_000)
      assert.strictEqual(view.messages.filter((m) => m.role === "assistant").at(-1)!.text, "echo: third reply")
      const dead = yield* until("both failing deliveries dead at the cap", Effect.map(deliveries("dead"), (list) => (list.length === 2 ? list : undefined)), 60_000)
      for (const delivery of dead) {
        assert.strictEqual(delivery.attempts, MAX_ATTEMPTS, "the server's cap")
        assert.include(delivery.lastError ?? "", "503")
      }
      assert.strictEqual((yield* deliveries("claimed")).length, 0)
      assert.isAtLeast(yield* gateway.metrics.read("open_cowork_gateway_provider_delivery_dead_letters_total", { provider_id: "hooks", provider_kind: "webhook" }), 2)
      assert.isAtLeast(yield* gateway.metrics.read("open_cowork_gateway_delivery_retries_total"), 3 + 2 * (MAX_ATTEMPTS - 1))

      // The operator retries one from the gateway once the provider is back: a fresh budget, then sent.
      receiver.server.heal()
      const retried = yield* http("POST", `${gateway.url}/deliveries/${dead[0]!.id}/retry`, undefined, undefined, gateway.admin)
      assert.strictEqual(retried.status, 200, JSON.stringify(retried.body))
      yield* until("the retried delivery sent", Effect.map(deliveries("sent"), (list) => (list.some((d) => d.id === dead[0]!.id) ? true : undefined)))
      const deadLettered = yield* http("POST", `${gateway.url}/deliveries/${dead[1]!.id}/dead-letter`, undefined, undefined, gateway.admin)
      assert.include([200, 409], deadLettered.status, "already dead: the cloud may refuse it")

      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))
})
