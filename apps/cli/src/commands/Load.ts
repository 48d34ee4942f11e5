import { Config, Console, Effect, Option } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Path from "node:path"
import { PROFILES, type Profile } from "../ops/LaunchValidate.ts"
import { runLoad } from "../ops/Load.ts"

/**
 * `cowork load` / `cowork soak` (apps/cli/src/ops/Load.ts): a profile of deploy/load/launch-readiness-targets.json
 * against a split stack the command starts; JSON + Markdown with go / conditional-go / no-go per gate. Exit 1 on
 * no-go (a conditional-go — a skipped gate — exits 0 and says so).
 */
const make = (mode: "load" | "soak", defaultDurationMs: number) =>
  Command.make(mode, {
    profile: Flag.String("profile").pipe(Flag.withDescription(`One of ${PROFILES.join(", ")} (default OPEN_COWORK_LOAD_PROFILE, else local-self-host-beta)`), Flag.optional),
    durationMs: Flag.Int("duration-ms").pipe(Flag.withDescription(`Traffic window (default OPEN_COWORK_LOAD_DURATION_MS, else ${defaultDurationMs})`), Flag.optional),
    outputDir: Flag.String("output-dir").pipe(Flag.withDescription("Report directory (default OPEN_COWORK_LOAD_OUTPUT_DIR, else .open-cowork-test/launch-readiness)"), Flag.optional),
    reportName: Flag.String("report-name").pipe(Flag.withDescription(`File name without extension (default ${mode}-<profile>)`), Flag.optional)
  }, (input) =>
    Effect.gen(function*() {
      const envProfile = yield* Config.String("OPEN_COWORK_LOAD_PROFILE").pipe(Config.withDefault("local-self-host-beta"))
      const envDuration = yield* Config.Int("OPEN_COWORK_LOAD_DURATION_MS").pipe(Config.withDefault(defaultDurationMs))
      const envOutput = yield* Config.String("OPEN_COWORK_LOAD_OUTPUT_DIR").pipe(Config.withDefault(".open-cowork-test/launch-readiness"))
      const profile = Option.getOrElse(input.profile, () => envProfile)
      if (!(PROFILES as ReadonlyArray<string>).includes(profile)) {
        return yield* Effect.fail(new CliError.UserError({ cause: profile, userMessage: `--profile must be one of ${PROFILES.join(", ")} (got "${profile}")` }))
      }
      const result = yield* Effect.tryPromise({
        try: () => runLoad({
          profile: profile as Profile,
          durationMs: Option.getOrElse(input.durationMs, () => envDuration),
          mode,
          outputDir: Path.resolve(Option.getOrElse(input.outputDir, () => envOutput)),
          reportName: Option.getOrUndefined(input.reportName)
        }),
        catch: (error) => new CliError.UserError({ cause: error, userMessage: `${mode} failed: ${error instanceof Error ? error.message : String(error)}` })
      })
      yield* Console.log(JSON.stringify({ decision: result.report.decision, gates: result.report.gates, json: result.jsonPath, markdown: result.mdPath }))
      if (result.report.decision === "no-go") {
        return yield* Effect.fail(new CliError.UserError({ cause: result.report.gates, userMessage: `${mode}: no-go (see ${result.mdPath})` }))
      }
    })).pipe(Command.withDescription(mode === "load"
      ? "Drive a launch profile's load against a local split stack and measure every capacity gate (go / conditional-go / no-go)"
      : "The load harness for a longer window (default 10 min), with resource trends"))

export const load = make("load", 60_000)
export const soak = make("soak", 600_000)
