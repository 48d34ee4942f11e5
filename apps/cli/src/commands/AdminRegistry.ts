import { heartbeatFreshWithinMs } from "@cowork/domain"
import type { Actor } from "@cowork/services"
import { Config, Console, Effect } from "effect"
import { CliError } from "effect/cli"
import * as Os from "node:os"

/** The audit actor for registry changes made from this CLI: no token, so the OS user names who did it. */
export const cliActor: Actor = {
  orgId: null,
  actor: `cli:${(() => {
    try {
      return Os.userInfo().username
    } catch {
      return "unknown"
    }
  })()}`
}

/** Same freshness rule as the admin routes (`heartbeatFreshWithinMs`). */
export const freshWithinMs = Config.Int("OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS").pipe(
  Config.withDefault(5_000),
  Config.map(heartbeatFreshWithinMs)
)

type Tagged = { readonly _tag: string; readonly message?: string }

/** A registry error as a CLI user error, worded like the routes' 404 / 409 bodies. */
export const userError = (error: Tagged): CliError.UserError => {
  if (error._tag === "IllegalTransition") {
    const illegal = error as unknown as { workerId: string; action: string; from: string; to: string }
    return new CliError.UserError({
      cause: error,
      userMessage: `illegal transition for worker ${illegal.workerId}: ${illegal.from} → ${illegal.to} (${illegal.action})`
    })
  }
  return new CliError.UserError({ cause: error, userMessage: error.message ?? error._tag })
}

/** Registry errors as CLI user errors (`userError`). */
export const userErrors = <A, E extends Tagged, R>(effect: Effect.Effect<A, E, R>) => Effect.mapError(effect, userError)

export const parseList = (raw: string): ReadonlyArray<string> =>
  raw.split(",").map((item) => item.trim()).filter((item) => item !== "")

/** One JSON document per line on stdout, for `jq` and scripts. */
export const printJson = (value: unknown) => Console.log(JSON.stringify(value))
