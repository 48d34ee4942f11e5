import { Context, Effect, Layer, Option } from "effect"

/**
 * Values every process of one deployment must agree on, first writer wins: the marker object that proves a
 * process writes to the deployment's object store, and a probe sealed with the deployment's secret key. A split
 * process whose store or key differs reads a marker it cannot match and reports itself not ready.
 */
export class DeploymentMarkers extends Context.Service<DeploymentMarkers, {
  readonly read: (name: string) => Effect.Effect<Option.Option<string>>
  /** Stores `candidate` under `name` unless a value is there already; returns the stored value either way. */
  readonly establish: (name: string, candidate: string) => Effect.Effect<string>
}>()("cowork/DeploymentMarkers") {
  /** Markers in process memory (one deployment per layer instance). */
  static readonly layerMemory: Layer.Layer<DeploymentMarkers> = Layer.sync(DeploymentMarkers, () => {
    const markers = new Map<string, string>()
    return DeploymentMarkers.of({
      read: (name) => Effect.sync(() => Option.fromNullishOr(markers.get(name))),
      establish: (name, candidate) =>
        Effect.sync(() => {
          if (!markers.has(name)) markers.set(name, candidate)
          return markers.get(name)!
        })
    })
  })
}
