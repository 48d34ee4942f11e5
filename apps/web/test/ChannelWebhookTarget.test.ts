import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

// The operator allows one internal receiver host; every other literal non-public address is refused at once.
process.env.OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS = "hooks.internal,192.168.7.7"

it.layer(layer)("webhook binding targets (SSRF, store-time)", (it) => {
  it.effect("a webhook URL whose host is a literal non-public address or localhost is a 400 naming externalTarget, at create and update", () =>
    Effect.gen(function*() {
      const admin = yield* orgWithToken(["web", "admin"])
      const create = (externalTarget: string, providerKind = "webhook") =>
        request("POST", "/api/channels/bindings", { token: admin.token, body: { providerKind, providerId: "hooks", displayName: "hook", externalTarget } })
      for (const target of [
        "http://127.0.0.1:8080/hook", "http://localhost/hook", "https://api.localhost/hook", "http://[::1]/hook", "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/", "http://[fd00::5]/hook", "http://100.64.0.1/hook", "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook", "http://0x7f.1/hook"
      ]) {
        const refused = yield* create(target)
        assert.strictEqual(refused.status, 400, target)
        assert.strictEqual(refused.body.error.details.field, "externalTarget", JSON.stringify(refused.body))
        assert.include(refused.body.error.message, "OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS")
      }
      assert.deepStrictEqual((yield* request("GET", "/api/channels/bindings", { token: admin.token })).body.bindings, [], "nothing was stored")

      // A public address, a host name (checked by the gateway when it connects) and an allowed host are accepted.
      for (const target of ["https://93.184.215.14/hook", "https://hooks.example.com/hook", "http://hooks.internal:8080/hook", "http://192.168.7.7/hook"]) {
        assert.strictEqual((yield* create(target)).status, 201, target)
      }
      // Another kind's target is not a URL and not checked.
      assert.strictEqual((yield* create("127.0.0.1", "telegram")).status, 201)

      const binding = (yield* create("https://hooks.example.com/a")).body.binding as { id: string }
      const moved = yield* request("PATCH", `/api/channels/bindings/${binding.id}`, { token: admin.token, body: { externalTarget: "http://10.0.0.1/hook" } })
      assert.strictEqual(moved.status, 400)
      assert.strictEqual(moved.body.error.details.field, "externalTarget")
      const kept = yield* request("GET", `/api/channels/bindings/${binding.id}`, { token: admin.token })
      assert.strictEqual(kept.body.binding.externalTarget, "https://hooks.example.com/a")
    }))
})
