import type { ReadinessCheck } from "@cowork/domain"
import { ChangeFeed } from "@cowork/services"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { migrationsApplied } from "./Migrations.ts"
import { authConfigured } from "./PgTokens.ts"

/**
 * The `/readyz` checks every role shares. Each detail is fixed text, safe to show unauthenticated: no host, URL,
 * error message or id ever reaches it.
 */
const probe = (name: string, check: Effect.Effect<string | undefined, unknown, SqlClient.SqlClient | ChangeFeed>, unreachable: string) =>
  check.pipe(
    Effect.timeout("3 seconds"),
    Effect.map((problem): ReadinessCheck => problem === undefined ? { name, status: "ok" } : { name, status: "error", detail: problem }),
    Effect.catchCause(() => Effect.succeed<ReadinessCheck>({ name, status: "error", detail: unreachable }))
  )

/** `control_plane`: the database answers and every migration this build knows is applied. */
export const controlPlane = probe(
  "control_plane",
  Effect.map(migrationsApplied, (applied) => applied ? undefined : "migrations pending"),
  "database unreachable"
)

/** `auth_config`: the tokens table answers and bootstrap issued a live token. */
export const authConfig = probe(
  "auth_config",
  Effect.map(authConfigured, (ok) => ok ? undefined : "no live API token; bootstrap has not run"),
  "tokens table unreachable"
)

/** `role_dependencies`: every LISTEN connection this process relies on is up. */
export const roleDependencies = probe(
  "role_dependencies",
  Effect.gen(function*() {
    const feed = yield* ChangeFeed
    const down = (yield* feed.listeners).filter((listener) => !listener.connected)
    return down.length === 0 ? undefined : `LISTEN connection down (${down.map((l) => l.channel).join(", ")}); re-establishing`
  }),
  "change feed unavailable"
)
