import { SecretAdapterUnavailable } from "@cowork/domain"
import { secretAdapterCheck } from "@cowork/secrets"
import { SecretAdapter } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"

/** An adapter whose key source is gone: every operation fails as unavailable, naming a path it must not leak. */
const Unavailable = Layer.succeed(SecretAdapter, SecretAdapter.of({
  dataKeyFor: () => Effect.fail(new SecretAdapterUnavailable({ message: "cannot read /home/ops/keys/master.key" })),
  encrypt: () => Effect.fail(new SecretAdapterUnavailable({ message: "cannot read /home/ops/keys/master.key" })),
  decrypt: () => Effect.fail(new SecretAdapterUnavailable({ message: "cannot read /home/ops/keys/master.key" }))
}))

describe("secret_adapter readiness", () => {
  it.effect("is ok when an envelope round-trips with the configured keys", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* secretAdapterCheck, { name: "secret_adapter", status: "ok" })
    }).pipe(Effect.provide(SecretAdapter.layerMemory)))

  it.effect("is an error naming only the failure class when the keys are unavailable", () =>
    Effect.gen(function*() {
      const check = yield* secretAdapterCheck
      assert.deepStrictEqual(check, { name: "secret_adapter", status: "error", detail: "SecretAdapterUnavailable" })
      assert.notInclude(JSON.stringify(check), "/home/ops")
    }).pipe(Effect.provide(Unavailable)))
})
