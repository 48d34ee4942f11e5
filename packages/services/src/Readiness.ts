import type { ReadinessCheck } from "@cowork/domain"
import { Effect } from "effect"
import { ChangeFeed } from "./ChangeFeed.ts"

/**
 * A `/readyz` check: `check` names a problem (or none) within 3 s; anything else reports `unreachable`. Each
 * detail is fixed text, safe to show unauthenticated: no host, URL, error message or id ever reaches it.
 */
export const probe = <R>(name: string, check: Effect.Effect<string | undefined, unknown, R>, unreachable: string) =>
  check.pipe(
    Effect.timeout("3 seconds"),
    Effect.map((problem): ReadinessCheck => problem === undefined ? { name, status: "ok" } : { name, status: "error", detail: problem }),
    Effect.catchCause(() => Effect.succeed<ReadinessCheck>({ name, status: "error", detail: unreachable }))
  )

/** `role_dependencies`: every LISTEN connection this process relies on is up. */
export const roleDependenciesCheck = probe(
  "role_dependencies",
  Effect.gen(function*() {
    const feed = yield* ChangeFeed
    const down = (yield* feed.listeners).filter((listener) => !listener.connected)
    return down.length === 0 ? undefined : `LISTEN connection down (${down.map((l) => l.channel).join(", ")}); re-establishing`
  }),
  "change feed unavailable"
)

/** `auth_config`'s problem when no caller can authenticate. */
export const NO_LIVE_TOKEN = "no live API token; bootstrap has not run"
