import { DefaultProfileName } from "@cowork/services"
import { Config, Context, Effect, Layer, type Scope } from "effect"

const make = (role: string) =>
  Effect.gen(function*() {
    const profileName = yield* DefaultProfileName
    let draining = false
    const listeners = new Set<() => void>()
    return WebLifecycle.of({
      role,
      profileName,
      isDraining: Effect.sync(() => draining),
      onDrain: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            if (draining) listener()
            else listeners.add(listener)
          }),
          () => Effect.sync(() => listeners.delete(listener))
        ),
      beginDrain: Effect.sync(() => {
        if (draining) return
        draining = true
        for (const listener of listeners) listener()
        listeners.clear()
      })
    })
  })

/**
 * Who this process is (`role`, `profileName`) and whether it is draining. Draining starts when the role's scope
 * begins to close: `/readyz` turns 503, new SSE requests get 503 + `Retry-After`, open SSE streams end.
 */
export class WebLifecycle extends Context.Service<WebLifecycle, {
  /** The PROCESS role: `web` for a split web process, `all` under `cowork up`. */
  readonly role: string
  readonly profileName: string
  readonly isDraining: Effect.Effect<boolean>
  /**
   * Calls `listener` (synchronously, once) when draining starts, or at once if it has; unregistered when the scope
   * closes. A plain callback, so an open stream holds no fiber to notice the drain.
   */
  readonly onDrain: (listener: () => void) => Effect.Effect<void, never, Scope.Scope>
  readonly beginDrain: Effect.Effect<void>
}>()("cowork/web/WebLifecycle") {
  /** The role given by the process launcher (`cowork up` → `all`, `cowork web` → `web`). */
  static readonly layerRole = (role: "web" | "all") => Layer.effect(WebLifecycle, make(role))

  /** The role from `OPEN_COWORK_CLOUD_ROLE` (default `web`): for entry points that do not know it themselves. */
  static readonly layer = Layer.effect(
    WebLifecycle,
    Effect.flatMap(Config.String("OPEN_COWORK_CLOUD_ROLE").pipe(Config.withDefault("web")), make)
  )

  /**
   * Starts draining when the scope it is built in closes. Build it AFTER the HTTP server (it depends on the server
   * layer), so its finalizer runs first: streams end before the server stops accepting and closes connections.
   */
  static readonly drainOnShutdown = Layer.effectDiscard(Effect.gen(function*() {
    const lifecycle = yield* WebLifecycle
    yield* Effect.addFinalizer(() =>
      Effect.logInfo("web draining: /readyz 503, new SSE refused, open streams ending").pipe(
        Effect.andThen(lifecycle.beginDrain)
      )
    )
  }))
}
