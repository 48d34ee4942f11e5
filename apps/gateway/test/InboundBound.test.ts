import { InboundSignatures } from "@cowork/channels"
import { assert, describe, it } from "@effect/vitest"
import { startGateway } from "./support/GatewayHarness.ts"
import { MemoryCloud } from "./support/MemoryCloud.ts"

const HOOK_IN = "canary-bound-inbound-secret"
const env = { GW_HOOK_IN: HOOK_IN }

const post = (url: string, eventId: string, signal?: AbortSignal) => {
  const body = JSON.stringify({ eventId, target: "chb_1", userId: "u-1", text: `hello ${eventId}` })
  const ts = String(Math.floor(Date.now() / 1000))
  return fetch(`${url}/webhooks/hooks`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts,
      [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(HOOK_IN, ts, body)
    },
    body,
    ...(signal === undefined ? {} : { signal })
  })
}

describe("inbound requests in progress are bounded", () => {
  it("with the cloud slow, one request past the bound is 503 + Retry-After at once; the held ones finish; the retry is taken", async () => {
    const cloud = new MemoryCloud()
    let release!: () => void
    cloud.inboundGate = new Promise<void>((resolve) => {
      release = resolve
    })
    const gateway = await startGateway(cloud, [{ id: "hooks", kind: "webhook", inboundSecretRef: "env:GW_HOOK_IN" }], env, { maxInboundInFlight: 2 })
    try {
      const held = [post(gateway.url, "b-1"), post(gateway.url, "b-2")]
      // Both are in the cloud's hands (signature verified, waiting on the gate) before the third comes.
      const deadline = Date.now() + 10_000
      while (cloud.inboundWaiting < 2) {
        if (Date.now() > deadline) assert.fail("the two requests never reached the cloud")
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      // Before: nothing bounded it — this request waited on the cloud like the others.
      const third = await post(gateway.url, "b-3", AbortSignal.timeout(5_000))
      assert.strictEqual(third.status, 503)
      assert.isNotNull(third.headers.get("retry-after"))
      assert.include((await third.json() as { error: { message: string } }).error.message, "too many inbound requests")
      assert.deepStrictEqual(cloud.prompts.map((p) => p.message.providerEventId), [], "nothing of the third reached the cloud")
      release()
      assert.deepStrictEqual(await Promise.all(held.map(async (r) => (await r).status)), [202, 202])
      assert.strictEqual((await post(gateway.url, "b-3")).status, 202, "the provider's retry is taken")
      assert.sameMembers(cloud.prompts.map((p) => p.message.providerEventId), ["b-1", "b-2", "b-3"])
      const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: gateway.admin })).text()
      assert.match(metrics, /open_cowork_gateway_webhook_requests_total\{outcome="overloaded",role="gateway"\} 1/)
    } finally {
      release()
      await gateway.stop()
    }
  })
})
