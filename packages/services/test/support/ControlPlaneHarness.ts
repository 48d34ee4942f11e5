import type {
  Artifacts,
  ChangeFeed,
  ChannelStore,
  DeliveryFeed,
  CommandQueue,
  ControlPlaneStatus,
  EventLog,
  Heartbeats,
  LeaseStore,
  ObjectStore,
  Projections,
  Quotas,
  QueueControls,
  Retention,
  SessionStore,
  Threads,
  Tokens,
  WorkerRegistry
} from "@cowork/services"
import { layerMemoryControlPlane } from "@cowork/services"
import { Effect, type Layer } from "effect"
import { TestClock } from "effect/testing"

/** Every control-plane service a contract suite may use, over ONE store. */
export type ControlPlane =
  | LeaseStore
  | CommandQueue
  | ControlPlaneStatus
  | EventLog
  | Projections
  | Heartbeats
  | ChangeFeed
  | SessionStore
  | Tokens
  | Artifacts
  | WorkerRegistry
  | ObjectStore
  | ChannelStore
  | DeliveryFeed
  | Threads
  | Quotas
  | Retention
  | QueueControls

/**
 * What a contract suite runs against: a fresh store per test (`layer`), and the store's clock. Expiry is driven
 * through `elapse`, never a sleep: the memory store moves the `TestClock`; Postgres keeps its own clock and moves
 * every stored time back by the same amount, which is the same thing to every rule that compares them.
 */
export interface ControlPlaneHarness<R = never> {
  readonly name: string
  readonly layer: Layer.Layer<ControlPlane | R, unknown>
  readonly elapse: (ms: number) => Effect.Effect<void, never, R>
}

export const memoryHarness: ControlPlaneHarness = {
  name: "memory",
  layer: layerMemoryControlPlane,
  elapse: (ms) => TestClock.adjust(ms)
}

/** Runs `body` on a fresh store of `harness`. */
export const onFreshStore = <R, A, E>(
  harness: ControlPlaneHarness<R>,
  body: Effect.Effect<A, E, NoInfer<ControlPlane | R>>
): Effect.Effect<A, unknown> => Effect.provide(body, harness.layer)
