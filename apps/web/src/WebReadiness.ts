import type { Readiness, ReadinessCheck } from "@cowork/domain"
import { secretAdapterCheck } from "@cowork/secrets"
import { objectStoreCheck } from "@cowork/storage"
import { type ChangeFeed, ControlPlaneStatus, type DeploymentMarkers, type ObjectStore, roleDependenciesCheck, type SecretAdapter } from "@cowork/services"
import { Effect } from "effect"
import { WebLifecycle } from "./WebLifecycle.ts"

/**
 * The web role's readiness: the control plane, auth configuration and its LISTEN connection, plus `draining` while
 * it shuts down, and the `object_store` and `secret_adapter` probes.
 */
export const report: Effect.Effect<Readiness, never, WebLifecycle | ControlPlaneStatus | ChangeFeed | ObjectStore | SecretAdapter | DeploymentMarkers> = Effect.gen(function*() {
  const lifecycle = yield* WebLifecycle
  const status = yield* ControlPlaneStatus
  const checks: Array<ReadinessCheck> = [...yield* Effect.all([
    status.controlPlane,
    status.authConfig,
    roleDependenciesCheck,
    objectStoreCheck,
    secretAdapterCheck
  ], { concurrency: "unbounded" })]
  if (yield* lifecycle.isDraining) checks.push({ name: "draining", status: "error", detail: "shutting down" })
  return { ok: checks.every((check) => check.status === "ok"), role: lifecycle.role, profileName: lifecycle.profileName, checks }
})
