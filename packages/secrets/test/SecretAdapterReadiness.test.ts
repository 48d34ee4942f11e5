import { SecretAdapterUnavailable } from "@cowork/domain"
import { NOT_THE_DEPLOYMENTS_KEY, secretAdapterCheck } from "@cowork/secrets"
import { DeploymentMarkers, SecretAdapter } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"

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
    }).pipe(Effect.provide(Layer.merge(SecretAdapter.layerMemory, DeploymentMarkers.layerMemory))))

  it.effect("is an error naming only the failure class when the keys are unavailable", () =>
    Effect.gen(function*() {
      const check = yield* secretAdapterCheck
      assert.deepStrictEqual(check, { name: "secret_adapter", status: "error", detail: "SecretAdapterUnavailable" })
      assert.notInclude(JSON.stringify(check), "/home/ops")
    }).pipe(Effect.provide(Layer.merge(Unavailable, DeploymentMarkers.layerMemory))))

  it.effect("a process whose key differs from the deployment's (the first to probe) is not ready", () =>
    Effect.gen(function*() {
      const keyA = Context.get(yield* Layer.build(Layer.fresh(SecretAdapter.layerMemory)), SecretAdapter)
      const keyB = Context.get(yield* Layer.build(Layer.fresh(SecretAdapter.layerMemory)), SecretAdapter)
      const checkWith = (adapter: SecretAdapter["Service"]) => Effect.provideService(secretAdapterCheck, SecretAdapter, adapter)
      assert.deepStrictEqual(yield* checkWith(keyA), { name: "secret_adapter", status: "ok" })
      const other = yield* checkWith(keyB)
      assert.deepStrictEqual(other, { name: "secret_adapter", status: "error", detail: NOT_THE_DEPLOYMENTS_KEY })
      assert.notInclude(other.detail!, "file:")
    }).pipe(Effect.scoped, Effect.provide(DeploymentMarkers.layerMemory)))
})
