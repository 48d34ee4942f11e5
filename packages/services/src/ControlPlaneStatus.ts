import type { ReadinessCheck } from "@cowork/domain"
import { Clock, Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { NO_LIVE_TOKEN, probe } from "./Readiness.ts"

/** Owned leases by liveness: the operator's lease census. */
export interface LeaseCensus {
  readonly held: number
  readonly expiredUnreaped: number
}

/** The control plane's own health as operators read it: readiness checks and the lease census. */
export class ControlPlaneStatus extends Context.Service<ControlPlaneStatus, {
  /** `control_plane`: the store answers and its schema is current. */
  readonly controlPlane: Effect.Effect<ReadinessCheck>
  /** `auth_config`: some caller can authenticate (bootstrap issued a live token). */
  readonly authConfig: Effect.Effect<ReadinessCheck>
  readonly leaseCensus: Effect.Effect<LeaseCensus>
}>()("cowork/ControlPlaneStatus") {
  static readonly layerMemory: Layer.Layer<ControlPlaneStatus, never, MemoryDatabase> = Layer.effect(
    ControlPlaneStatus,
    Effect.map(Effect.service(MemoryDatabase), (db) =>
      ControlPlaneStatus.of({
        controlPlane: probe("control_plane", Effect.succeed(undefined), "database unreachable"),
        authConfig: probe(
          "auth_config",
          Effect.map(Clock.currentTimeMillis, (now) =>
            [...db.tokens.values()].some((t) => t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now))
              ? undefined
              : NO_LIVE_TOKEN),
          "tokens table unreachable"
        ),
        leaseCensus: Effect.map(Clock.currentTimeMillis, (now) => {
          let held = 0
          let expiredUnreaped = 0
          for (const lease of db.leases.values()) {
            if (lease.workerId === null) continue
            if (lease.expiresAt > now) held++
            else expiredUnreaped++
          }
          return { held, expiredUnreaped }
        })
      }))
  )
}
