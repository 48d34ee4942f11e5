import { Console, Effect } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Path from "node:path"
import { validate as runValidate } from "../ops/LaunchValidate.ts"

/** `cowork launch validate [--root DIR]`: one JSON line per finding; exit 1 when any fails. */
const validate = Command.make("validate", {
  root: Flag.String("root").pipe(Flag.withDescription("Repository root (default: this checkout)"), Flag.withDefault(Path.resolve(import.meta.dirname, "../../../..")))
}, (input) =>
  Effect.gen(function*() {
    const findings = runValidate(Path.resolve(input.root))
    for (const finding of findings) yield* Console.log(JSON.stringify(finding))
    const failed = findings.filter((f) => !f.ok)
    if (failed.length > 0) {
      return yield* Effect.fail(new CliError.UserError({ cause: failed, userMessage: `launch validate: ${failed.length} problem(s)` }))
    }
  })).pipe(Command.withDescription("Check the launch targets, evidence matrix, report template, runbook names and dashboards against the code"))

export const command = Command.make("launch").pipe(
  Command.withDescription("Launch-readiness checks"),
  Command.withSubcommands([validate])
)
