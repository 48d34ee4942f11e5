import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as CliEnvironment from "./CliEnvironment.ts"
import * as Admin from "./commands/Admin.ts"
import * as Migrate from "./commands/Migrate.ts"
import * as Logging from "./Logging.ts"

const cowork = Command.make("cowork").pipe(
  Command.withDescription("Cowork Cloud control plane"),
  Command.withSubcommands([Migrate.command, Admin.command])
)

cowork.pipe(
  Command.run({ version: "0.0.0" }),
  Effect.provide([CliEnvironment.layer, Logging.layer]),
  NodeRuntime.runMain
)
