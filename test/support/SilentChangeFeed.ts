import { ChangeFeed } from "@cowork/services"
import { Effect, Layer, Stream } from "effect"

/**
 * A change feed that never signals (no notification, no listener, no resync): a role under test finds its work by
 * its backstop polls alone. `overrides` replace the members a test drives itself.
 */
export const silentChangeFeed = (overrides: Partial<ChangeFeed["Service"]> = {}): ChangeFeed["Service"] =>
  ChangeFeed.of({
    sessionChanges: Effect.succeed(Stream.never),
    commandSignals: Effect.succeed(Stream.never),
    notifyCommand: () => Effect.void,
    listeners: Effect.succeed([]),
    revocations: Effect.succeed(Stream.never),
    workflowChanges: Effect.succeed(Stream.never),
    resyncs: Effect.succeed(Stream.never),
    ...overrides
  })

export const SilentChangeFeed: Layer.Layer<ChangeFeed> = Layer.succeed(ChangeFeed, silentChangeFeed())
