import type { RuntimeSession } from "@cowork/services"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { WorkerConfig } from "./WorkerConfig.ts"

/** A released session's runtime, open in its own scope, holding the state of checkpoint `version`. */
export interface WarmRuntime {
  readonly runtime: RuntimeSession
  readonly version: number
  readonly scope: Scope.Closeable
}

/**
 * Runtimes of sessions this worker released cleanly, keyed by session: the next claim of the same session reuses
 * one when it holds exactly the lease's checkpoint. Bounded (the oldest is closed first) and closed when the
 * worker stops.
 */
export class WarmRuntimes extends Context.Service<WarmRuntimes, {
  /** Removes the session's warm runtime and hands it over (the caller closes or keeps it). */
  readonly take: (sessionId: string) => Effect.Effect<WarmRuntime | undefined>
  /** Keeps a runtime warm; beyond capacity the oldest one is closed. */
  readonly keep: (sessionId: string, entry: WarmRuntime) => Effect.Effect<void>
  readonly size: () => number
}>()("cowork/worker/WarmRuntimes") {
  static readonly make = (capacity: number) =>
    Effect.gen(function*() {
      const warm = new Map<string, WarmRuntime>()
      yield* Effect.addFinalizer(() =>
        Effect.forEach([...warm.values()], (entry) => Scope.close(entry.scope, Exit.void), { discard: true }).pipe(
          Effect.andThen(Effect.sync(() => warm.clear()))
        ))
      return WarmRuntimes.of({
        take: (sessionId) =>
          Effect.sync(() => {
            const entry = warm.get(sessionId)
            warm.delete(sessionId)
            return entry
          }),
        keep: (sessionId, entry) =>
          Effect.suspend(() => {
            warm.set(sessionId, entry)
            const [oldest] = warm.keys()
            if (warm.size <= capacity || oldest === undefined) return Effect.void
            const evicted = warm.get(oldest)!
            warm.delete(oldest)
            return Scope.close(evicted.scope, Exit.void)
          }),
        size: () => warm.size
      })
    })

  /** Bounded by OPEN_COWORK_CLOUD_WORKER_WARM_RUNTIMES. */
  static readonly layer = Layer.effect(WarmRuntimes, Effect.gen(function*() {
    const config = yield* WorkerConfig
    return yield* WarmRuntimes.make(config.warmRuntimes)
  }))
}
