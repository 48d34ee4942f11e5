import { GatewayLaunch } from "@cowork/gateway"
import { Config, Effect } from "effect"
import { Command } from "effect/cli"
import * as Roles from "../Roles.ts"

const launch = Roles.launch

export const up = Command.make("up", {}, () => launch("all")).pipe(
  Command.withDescription("All-in-one: web + worker + scheduler in one process (embedded Postgres unless OPEN_COWORK_DATABASE_URL)")
)

export const web = Command.make("web", {}, () => launch("web")).pipe(
  Command.withDescription("The web role: HTTP API and SSE fan-out (needs OPEN_COWORK_DATABASE_URL)")
)

export const worker = Command.make("worker", {}, () => launch("worker")).pipe(
  Command.withDescription("The worker role: claims sessions and runs prompts (needs OPEN_COWORK_DATABASE_URL)")
)

export const scheduler = Command.make("scheduler", {}, () => launch("scheduler")).pipe(
  Command.withDescription("The scheduler role: fires due workflow slots exactly once across replicas (needs OPEN_COWORK_DATABASE_URL)")
)

/** `cowork` with no subcommand: the role named by `OPEN_COWORK_CLOUD_ROLE` (default `all`). */
export const fromEnvironment = Effect.gen(function*() {
  const role = yield* Config.Literals(["web", "worker", "scheduler", "gateway", "all"], "OPEN_COWORK_CLOUD_ROLE").pipe(Config.withDefault("all"))
  // The gateway has no database: it is launched on its own, not through the database-backed roles.
  return yield* (role === "gateway" ? GatewayLaunch.launch : launch(role))
})
