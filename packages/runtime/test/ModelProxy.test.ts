import { Metrics } from "@cowork/observability"
import { FakeModelServer, ModelProxy } from "@cowork/runtime"
import { ByokStore, SecretAdapter } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"

/** The loopback model proxy on its own: session tokens, the key swapped in, usage counted, reveal failures. */

/** The proxy with `OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS` as given (the fake model listens on 127.0.0.1). */
const layersAllowing = (allowedHosts: string) =>
  ModelProxy.layerByok("openai").pipe(
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS: allowedHosts }))),
    Layer.provideMerge(ByokStore.layerMemory),
    Layer.provideMerge(SecretAdapter.layerMemory),
    Layer.provideMerge(Metrics.layerTest("worker"))
  )
const layers = layersAllowing("127.0.0.1")

const chat = (baseUrl: string, authorization = "Bearer placeholder") =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body: JSON.stringify({ model: "fake-model", stream: true, messages: [{ role: "user", content: "hi there" }] })
    })
    return { status: response.status, text: await response.text() }
  })

describe("ModelProxy", () => {
  it.effect("forwards with the org's key in place of opencode's placeholder, counts usage; wrong tokens are 404; no key is 401 counted", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.acquireRelease(Effect.promise(() => FakeModelServer.start()), (s) => Effect.promise(() => s.close()))
      const byok = yield* ByokStore
      yield* byok.put("org_a", "openai", { apiKey: Redacted.make("sk-proxy-test-key-1"), baseUrl: fake.url })
      const proxy = yield* ModelProxy.ModelProxy
      const failures: Array<string> = []
      const a = yield* proxy.register({ sessionId: "ses_a", orgId: "org_a", onRevealFailure: (reason) => failures.push(reason) })
      const b = yield* proxy.register({ sessionId: "ses_b", orgId: "org_b", onRevealFailure: (reason) => failures.push(reason) })

      const answered = yield* chat(a.baseUrl)
      assert.strictEqual(answered.status, 200)
      assert.include(answered.text, "chat.completion.chunk")
      assert.include(answered.text, "[DONE]", "the stream was forwarded to its end")
      assert.strictEqual(fake.completions()[0]!.headers.authorization, "Bearer sk-proxy-test-key-1")
      const usage = yield* proxy.usage("org_a", "ses_a")
      assert.strictEqual(usage.requests, 1)
      assert.isAbove(usage.inputTokens, 0)
      assert.isAbove(usage.outputTokens, 0)

      // A token with the right id and the wrong secret, or no token at all, reaches nothing.
      const forged = a.baseUrl.replace(/\.([A-Za-z0-9_-]+)\/v1$/, ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/v1")
      assert.notStrictEqual(forged, a.baseUrl)
      assert.strictEqual((yield* chat(forged)).status, 404)
      assert.strictEqual((yield* chat(a.baseUrl.replace(/\/p\/[^/]+\//, "/p/nope/"))).status, 404)

      const refused = yield* chat(b.baseUrl)
      assert.strictEqual(refused.status, 401)
      assert.include(refused.text, "could not be used (not_configured)")
      assert.deepStrictEqual(failures, ["not_configured"])
      const metrics = yield* Metrics
      assert.strictEqual(yield* metrics.read("open_cowork_cloud_byok_reveal_failures_total", { reason: "not_configured" }), 1)
      assert.strictEqual(fake.completions().length, 1, "nothing was forwarded without a key")
    }).pipe(Effect.scoped, Effect.provide(layers)))

  it.effect("an org's base URL on a non-public address is refused at run time (502, nothing sent) unless the operator allows its host", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.acquireRelease(Effect.promise(() => FakeModelServer.start()), (s) => Effect.promise(() => s.close()))
      const byok = yield* ByokStore
      const proxy = yield* ModelProxy.ModelProxy
      const failures: Array<string> = []
      for (const [orgId, baseUrl] of [["org_loop", fake.url], ["org_named", fake.url.replace("127.0.0.1", "localhost")]] as const) {
        yield* byok.put(orgId, "openai", { apiKey: Redacted.make("sk-proxy-test-key-2"), baseUrl })
        const registration = yield* proxy.register({ sessionId: `ses_${orgId}`, orgId, onRevealFailure: (reason) => failures.push(reason) })
        const refused = yield* chat(registration.baseUrl)
        assert.strictEqual(refused.status, 502, baseUrl)
        assert.include(refused.text, "upstream_address_refused")
        assert.include(refused.text, "loopback")
      }
      assert.strictEqual(fake.completions().length, 0, "nothing reached the loopback server")
      assert.deepStrictEqual(failures, [])
    }).pipe(Effect.scoped, Effect.provide(layersAllowing(""))))
})
