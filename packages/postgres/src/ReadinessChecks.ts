import { NO_LIVE_TOKEN, probe, roleDependenciesCheck } from "@cowork/services"
import { Effect } from "effect"
import { pendingMigrations } from "./Migrations.ts"
import { authConfigured } from "./PgTokens.ts"

/** The `/readyz` checks of the Postgres control plane (the probe and its fixed texts: services Readiness.ts). */

/** `control_plane`: the database answers and every migration this build knows is applied. */
export const controlPlane = probe(
  "control_plane",
  Effect.map(pendingMigrations, (pending) => pending.length === 0 ? undefined : `migrations pending: ${pending.join(", ")}`),
  "database unreachable"
)

/** `auth_config`: the tokens table answers and bootstrap issued a live token. */
export const authConfig = probe(
  "auth_config",
  Effect.map(authConfigured, (ok) => ok ? undefined : NO_LIVE_TOKEN),
  "tokens table unreachable"
)

/** `role_dependencies`: every LISTEN connection this process relies on is up. */
export const roleDependencies = roleDependenciesCheck
