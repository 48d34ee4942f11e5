import { Api, NotReady } from "@cowork/domain"
import { ChangeFeed, ControlPlaneStatus } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import * as WebReadiness from "./WebReadiness.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

/** `/healthz`, `/livez` (the process loop is alive) and `/readyz` (dependencies reachable, not draining). */
export const layer = HttpApiBuilder.group(Api, "health", Effect.fn(function*(handlers) {
  const lifecycle = yield* WebLifecycle
  const status = yield* ControlPlaneStatus
  const feed = yield* ChangeFeed
  const liveness = () => Effect.succeed({ ok: true as const, role: lifecycle.role, profileName: lifecycle.profileName })

  return handlers.handleAll({
    healthz: liveness,
    livez: liveness,
    readyz: () =>
      Effect.gen(function*() {
        const body = yield* WebReadiness.report
        if (!body.ok) return yield* new NotReady(body)
        return body
      }).pipe(
        Effect.provideService(WebLifecycle, lifecycle),
        Effect.provideService(ControlPlaneStatus, status),
        Effect.provideService(ChangeFeed, feed)
      )
  })
}))
