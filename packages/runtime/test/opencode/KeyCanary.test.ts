import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Metrics } from "@cowork/observability"
import { FakeModelServer, ModelProxy, OpenCodeRuntime } from "@cowork/runtime"
import { AgentRuntime, ByokStore, type RuntimeEvent, SecretAdapter } from "@cowork/services"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted, Stream } from "effect"
import * as Crypto from "node:crypto"

/**
 * The key canary with the real opencode binary: a provider key stored for the org reaches the (fake) provider on
 * every model call, through the worker's loopback proxy, and is found nowhere opencode could show it: its HTTP API
 * (config, providers), the agent's shell (`env`, the data and config dirs), the exported state.
 */

let fake: FakeModelServer.FakeModelServer
let root: string
const servers = new Map<string, { readonly url: string; readonly authorization: string }>()
const CANARY = `sk-canary-${Crypto.randomBytes(16).toString("hex")}`
const ORG = "org_canary"

beforeAll(async () => {
  fake = await FakeModelServer.start()
  root = mkdtempSync(path.join(tmpdir(), "cowork-canary-"))
})
afterAll(async () => {
  await fake?.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

const layers = Layer.suspend(() =>
  OpenCodeRuntime.layerProxied({
    root,
    model: "fake-model",
    onStarted: (sessionId, server) => servers.set(sessionId, server)
  }).pipe(
    // The fake model listens on loopback: allowed as an operator would allow a local model server.
    Layer.provideMerge(ModelProxy.layerByok("openai").pipe(
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS: "127.0.0.1" })))
    )),
    Layer.provideMerge(ByokStore.layerMemory),
    Layer.provideMerge(SecretAdapter.layerMemory),
    Layer.provideMerge(Metrics.layerTest("worker"))
  )
)

const ofTag = <T extends RuntimeEvent["_tag"]>(events: ReadonlyArray<RuntimeEvent>, tag: T) =>
  events.filter((e): e is Extract<RuntimeEvent, { _tag: T }> => e._tag === tag)

describe("key canary (real opencode, fake model, loopback proxy)", () => {
  it.effect("the key reaches the provider on every call and nowhere else; a missing key is a redacted runtime error", () =>
    Effect.gen(function*() {
      const byok = yield* ByokStore
      yield* byok.put(ORG, "openai", { apiKey: Redacted.make(CANARY), baseUrl: fake.url })
      const runtime = yield* AgentRuntime
      const session = yield* runtime.open("ses_canary", { orgId: ORG })

      const shell = yield* Stream.runCollect(Stream.tap(session.prompt({
        commandId: "cmd_env",
        text: "[[bash:env; cat ../xdg/config/opencode/opencode.json ../opencode-config/package.json; grep -r sk- ../xdg ../opencode-config 2>/dev/null | head -50]]",
        attempt: 1
      }), (event) =>
        // Reading outside the workspace asks first (opencode's external_directory rule): allow it.
        event._tag === "PermissionRequested" ? session.respondPermission!(event.permissionId, "once").pipe(Effect.orDie) : Effect.void))
      const calls = ofTag(shell, "ToolCall").filter((c) => c.status === "completed")
      assert.strictEqual(calls.length, 1)
      const output = JSON.stringify(calls[0]!.output)
      assert.include(output, "XDG_DATA_HOME", "the shell ran and printed its environment")
      assert.notInclude(output, CANARY)

      // Opencode's HTTP API: config and provider listings show the proxy URL and the placeholder only.
      const server = servers.get("ses_canary")!
      for (const route of ["/config", "/config/providers", "/provider"]) {
        const response = yield* Effect.promise(() =>
          fetch(`${server.url}${route}`, { headers: { authorization: server.authorization } }).then(async (r) => ({ status: r.status, text: await r.text() }))
        )
        assert.strictEqual(response.status, 200, route)
        assert.notInclude(response.text, CANARY, route)
      }

      const state = yield* session.exportState
      for (const [name, bytes] of state.files) {
        assert.isFalse(Buffer.from(bytes).includes(CANARY), `exported ${name} holds the key`)
      }

      // The provider got the key on every call, as a bearer token (opencode's placeholder was replaced).
      const received = fake.completions()
      assert.isAtLeast(received.length, 2)
      for (const request of received) assert.strictEqual(request.headers.authorization, `Bearer ${CANARY}`)
      const proxy = yield* ModelProxy.ModelProxy
      const usage = yield* proxy.usage(ORG, "ses_canary")
      assert.strictEqual(usage.requests, received.length)
      assert.isAbove(usage.inputTokens, 0)

      // An org without a key: the turn reports a redacted runtime error and ends; the failure is counted.
      const keyless = yield* runtime.open("ses_keyless", { orgId: "org_without_key" })
      const refused = yield* Stream.runCollect(keyless.prompt({ commandId: "cmd_nokey", text: "hello", attempt: 1 }))
      const errors = ofTag(refused, "Error")
      assert.isAtLeast(errors.length, 1)
      assert.include(errors[0]!.message, "could not be used (not_configured)")
      for (const error of errors) assert.notInclude(error.message, CANARY)
      const metrics = yield* Metrics
      assert.isAtLeast(yield* metrics.read("open_cowork_cloud_byok_reveal_failures_total", { reason: "not_configured" }), 1)
    }).pipe(Effect.scoped, Effect.provide(layers)), 180_000)
})
