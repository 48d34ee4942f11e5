import { Config, Console, Effect } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Path from "node:path"
import { runFailoverDrill } from "../ops/FailoverDrill.ts"
import { runRestoreDrill } from "../ops/RestoreDrill.ts"

/**
 * `cowork drill restore`: the backup/restore runbook end to end with real processes (apps/cli/src/ops/RestoreDrill.ts);
 * writes the drill report (Markdown + JSON beside it) and exits 1 when a check failed.
 */
export const restore = Command.make("restore", {
  report: Flag.String("report").pipe(
    Flag.withDescription("Where to write the Markdown report (a .json is written beside it)"),
    Flag.withDefault("docs/runbooks/restore-drill-report.md")
  ),
  sessions: Flag.Int("sessions").pipe(Flag.withDescription("Sessions to seed (2 prompts each)"), Flag.withDefault(4))
}, (input) =>
  Effect.gen(function*() {
    const serverUrl = yield* Config.String("OPEN_COWORK_DRILL_DATABASE_URL").pipe(Config.withDefault(""))
    const report = yield* Effect.tryPromise({
      try: () => runRestoreDrill({ serverUrl, reportPath: Path.resolve(input.report), sessions: input.sessions }),
      catch: (error) => new CliError.UserError({ cause: error, userMessage: `restore drill failed: ${error instanceof Error ? error.message : String(error)}` })
    })
    yield* Console.log(JSON.stringify({ ok: report.ok, durationMs: report.durationMs, refusal: report.refusal, checks: report.checks, report: input.report }))
    if (!report.ok) return yield* Effect.fail(new CliError.UserError({ cause: report, userMessage: "restore drill: a check failed (see the report)" }))
  })).pipe(Command.withDescription("Seed, back up, restore into a new database + store, start web then a worker then the scheduler, and write the drill report"))

/**
 * `cowork drill failover`: web/worker/scheduler x2 as real processes; SIGKILL/SIGTERM each role, a Postgres restart
 * and an object-store outage under client traffic; time to recover per fault and the invariants, as JSON + Markdown.
 */
export const failover = Command.make("failover", {
  report: Flag.String("report").pipe(
    Flag.withDescription("Where to write the Markdown report (a .json is written beside it)"),
    Flag.withDefault("docs/runbooks/failover-drill-report.md")
  ),
  sessions: Flag.Int("sessions").pipe(Flag.withDescription("Sessions driven (one SSE client each)"), Flag.withDefault(6))
}, (input) =>
  Effect.gen(function*() {
    const report = yield* Effect.tryPromise({
      try: () => runFailoverDrill({ reportPath: Path.resolve(input.report), sessions: input.sessions }),
      catch: (error) => new CliError.UserError({ cause: error, userMessage: `failover drill failed: ${error instanceof Error ? error.message : String(error)}` })
    })
    yield* Console.log(JSON.stringify({ ok: report.ok, durationMs: report.durationMs, traffic: report.traffic, faults: report.faults, invariants: report.invariants, report: input.report }))
    if (!report.ok) return yield* Effect.fail(new CliError.UserError({ cause: report, userMessage: "failover drill: a fault did not recover or an invariant failed (see the report)" }))
  })).pipe(Command.withDescription("Kill and restart every role, Postgres and the object store under traffic; report time to recover and the invariants"))

export const command = Command.make("drill").pipe(
  Command.withDescription("Operational drills with real processes"),
  Command.withSubcommands([restore, failover])
)
