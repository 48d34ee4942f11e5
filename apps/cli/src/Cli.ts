import { Logging } from "@cowork/observability"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Effect, Exit, identity, Runtime } from "effect"
import { Command } from "effect/cli"
import { commandPath } from "./CommandPath.ts"
import * as Admin from "./commands/Admin.ts"
import * as Gateway from "./commands/Gateway.ts"
import * as Backup from "./commands/Backup.ts"
import * as Drill from "./commands/Drill.ts"
import * as Launch from "./commands/Launch.ts"
import * as Load from "./commands/Load.ts"
import * as Migrate from "./commands/Migrate.ts"
import * as Restore from "./commands/Restore.ts"
import * as Serve from "./commands/Serve.ts"

const cowork = Command.make("cowork", {}, () => Serve.fromEnvironment).pipe(
  Command.withDescription("Cowork Cloud control plane. Without a subcommand, runs the role in OPEN_COWORK_CLOUD_ROLE (web, worker, scheduler, gateway, all; default all)"),
  Command.withSubcommands([Serve.up, Serve.web, Serve.worker, Serve.scheduler, Gateway.command, Migrate.command, Admin.command, Backup.command, Restore.command, Drill.command, Launch.command, Load.load, Load.soak])
)

/** SIGTERM / SIGINT interrupt the main fiber; once every finalizer has run, that is a clean exit (code 0). */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

/** The commands that run a role: their role's logger (Roles.ts, GatewayLaunch.ts) names the role on every line. */
const SERVING: ReadonlySet<string> = new Set(["up", "web", "worker", "scheduler", "gateway"])
const path = commandPath(cowork, process.argv.slice(2))

cowork.pipe(
  Command.run({ version: "0.0.0" }),
  // Any other command's lines say which command wrote them (`"role":"cli","command":"admin org offboard"`).
  path.length === 0 || SERVING.has(path[0]!) ? identity : Effect.annotateLogs({ command: path.join(" ") }),
  Effect.provide([NodeServices.layer, Logging.layerStderr("cli")]),
  NodeRuntime.runMain({ teardown })
)
