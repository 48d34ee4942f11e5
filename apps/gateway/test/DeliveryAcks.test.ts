import { assert, describe, it } from "@effect/vitest"
import { WebhookReceiver } from "../../../packages/channels/test/support/WebhookReceiver.ts"
import { startGateway } from "./support/GatewayHarness.ts"
import { MemoryCloud } from "./support/MemoryCloud.ts"

const HOOK_OUT = "canary-acks-outbound-secret"
const env = { GW_HOOK_OUT: HOOK_OUT, OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" }

const until = async (what: string, check: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.fail(`not within ${timeoutMs} ms: ${what}`)
}

describe("delivery acks", () => {
  it("a slow ack holds no send slot: with one slot, the next deliveries go out while the first ack waits, and their acks go in one batch", async () => {
    const receiver = new WebhookReceiver(HOOK_OUT)
    await receiver.start()
    const cloud = new MemoryCloud()
    let release!: () => void
    cloud.ackGate = new Promise<void>((resolve) => {
      release = resolve
    })
    const gateway = await startGateway(cloud, [{ id: "hooks", kind: "webhook", outboundSecretRef: "env:GW_HOOK_OUT", timeoutMs: 1_000 }], env, {
      concurrency: 1,
      claimTtlMs: 10_000
    })
    try {
      const first = cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: "first" })
      await receiver.waitForKeys(1)
      await until("the first ack is waiting on the cloud", () => cloud.ackBatches.length === 1)
      const rest = [1, 2, 3].map((i) => cloud.add({ providerId: "hooks", providerKind: "webhook", target: receiver.url, text: `next ${i}` }))
      // Before: the ack held the only send slot, so nothing more went out until the cloud answered it.
      await until("the next three at the provider while the first ack waits", () => receiver.received.length === 4)
      assert.deepStrictEqual(cloud.ackBatches, [1], "nothing else acked while the first ack waits")
      release()
      await until("all four acked sent", () => [first, ...rest].every((d) => d.status === "sent"))
      assert.strictEqual(cloud.ackBatches.reduce((a, b) => a + b, 0), 4)
      assert.isAtMost(cloud.ackBatches.length, 3, `acks that finished while one was answered go together (batches ${cloud.ackBatches.join(", ")})`)
      assert.sameMembers(receiver.received.map((r) => r.idempotencyKey), [first, ...rest].map((d) => d.idempotencyKey))
      assert.strictEqual(cloud.staleAcks, 0)
    } finally {
      release()
      await gateway.stop()
      await receiver.stop()
    }
  })
})
