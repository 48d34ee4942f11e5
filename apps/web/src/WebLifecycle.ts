import { DefaultProfileName } from "@cowork/services"
import { Config, Context, Deferred, Effect, Layer } from "effect"

const make = (role: string) =>
  Effect.gen(function*() {
    const profileName = yield* DefaultProfileName
    const started = yield* Deferred.make<void>()
    return WebLifecycle.of({
      role,
      profileName,
      isDraining: Deferred.isDone(started),
      draining: Deferred.await(started),
      beginDrain: Deferred.succeed(started, undefined).pipe(Effect.asVoid)
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
  /** Completes when draining starts. */
  readonly draining: Effect.Effect<void>
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
