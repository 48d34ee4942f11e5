import { DeploymentMarkers } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Option } from "effect"

/** What every DeploymentMarkers does, on memory and Postgres: the first value wins, every later caller reads it. */
export const deploymentMarkersContract = <E, R = never>(name: string, markersLayer: Layer.Layer<DeploymentMarkers | R, E>) =>
  layer(markersLayer, { timeout: 60_000 })(`DeploymentMarkers contract: ${name}`, (it) => {
    it.effect("the first establish wins; later candidates get the stored value; markers are independent by name", () =>
      Effect.gen(function*() {
        const markers = yield* DeploymentMarkers
        const name = `marker-${globalThis.crypto.randomUUID().slice(0, 8)}`
        assert.isTrue(Option.isNone(yield* markers.read(name)))
        assert.strictEqual(yield* markers.establish(name, "first"), "first")
        assert.strictEqual(yield* markers.establish(name, "second"), "first", "a second process adopts the first value")
        assert.deepStrictEqual(yield* markers.read(name), Option.some("first"))
        assert.strictEqual(yield* markers.establish(`${name}-other`, "other"), "other")
      }))

    it.effect("racing establishers all get the same winner", () =>
      Effect.gen(function*() {
        const markers = yield* DeploymentMarkers
        const name = `race-${globalThis.crypto.randomUUID().slice(0, 8)}`
        const results = yield* Effect.forEach(["a", "b", "c", "d"], (candidate) => markers.establish(name, candidate), {
          concurrency: "unbounded"
        })
        assert.strictEqual(new Set(results).size, 1)
        assert.deepStrictEqual(yield* markers.read(name), Option.some(results[0]!))
      }))
  })
