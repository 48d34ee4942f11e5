import { Config, Console, Effect, Option } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Path from "node:path"
import { type DrillObjectStore, runFailoverDrill } from "../ops/FailoverDrill.ts"
import { runRestoreDrill } from "../ops/RestoreDrill.ts"

/**
 * `cowork drill restore`: the backup/restore runbook end to end with real processes (apps/cli/src/ops/RestoreDrill.ts);
 * writes the drill report (Markdown + JSON beside it) and exits 1 when a check failed.
 */
const restore = Command.make("restore", {
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
 * The operator's S3 for the failover drill: OPEN_COWORK_OBJECT_STORE_URI=s3://… with OPEN_COWORK_OBJECT_STORE_ENDPOINT
 * (and the credentials, region, path style) as the roles read them; none set: undefined (the dev s3rver).
 */
const operatorObjectStore = Effect.gen(function*() {
  const optional = (name: string) => Config.option(Config.String(name)).pipe(Effect.map(Option.getOrUndefined))
  const uri = yield* optional("OPEN_COWORK_OBJECT_STORE_URI")
  if (uri === undefined || !uri.startsWith("s3://")) return undefined
  const endpoint = yield* optional("OPEN_COWORK_OBJECT_STORE_ENDPOINT")
  if (endpoint === undefined) {
    return yield* Effect.fail(new CliError.UserError({
      cause: uri,
      userMessage: "OPEN_COWORK_OBJECT_STORE_URI is an s3:// store but OPEN_COWORK_OBJECT_STORE_ENDPOINT is not set: the failover drill cuts the store with a TCP proxy in front of that endpoint (http://host:port)"
    }))
  }
  const pathStyle = yield* optional("OPEN_COWORK_OBJECT_STORE_FORCE_PATH_STYLE")
  return {
    uri,
    endpoint,
    accessKeyId: yield* optional("OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID"),
    secretAccessKey: yield* optional("OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY"),
    region: yield* optional("OPEN_COWORK_OBJECT_STORE_REGION"),
    forcePathStyle: pathStyle === undefined ? undefined : pathStyle === "true"
  } satisfies DrillObjectStore
})

/**
 * `cowork drill failover`: web/worker/scheduler/gateway x2 as real processes; SIGKILL/SIGTERM each role, a Postgres
 * restart and an object-store outage under client traffic; time to recover per fault and the invariants, as JSON +
 * Markdown. The object store is the operator's S3 (OPEN_COWORK_OBJECT_STORE_*) when set, else the dev s3rver.
 */
const failover = Command.make("failover", {
  report: Flag.String("report").pipe(
    Flag.withDescription("Where to write the Markdown report (a .json is written beside it)"),
    Flag.withDefault("docs/runbooks/failover-drill-report.md")
  ),
  sessions: Flag.Int("sessions").pipe(Flag.withDescription("Sessions driven (one SSE client each)"), Flag.withDefault(6))
}, (input) =>
  Effect.gen(function*() {
    const objectStore = yield* operatorObjectStore
    const report = yield* Effect.tryPromise({
      try: () => runFailoverDrill({ reportPath: Path.resolve(input.report), sessions: input.sessions, objectStore }),
      catch: (error) => new CliError.UserError({ cause: error, userMessage: `failover drill failed: ${error instanceof Error ? error.message : String(error)}` })
    })
    yield* Console.log(JSON.stringify({ ok: report.ok, durationMs: report.durationMs, traffic: report.traffic, faults: report.faults, invariants: report.invariants, report: input.report }))
    if (!report.ok) return yield* Effect.fail(new CliError.UserError({ cause: report, userMessage: "failover drill: a fault did not recover or an invariant failed (see the report)" }))
  })).pipe(Command.withDescription("Kill and restart every role (gateways included), Postgres and the object store under traffic; report time to recover and the invariants (S3: OPEN_COWORK_OBJECT_STORE_* if set, else the dev s3rver)"))

export const command = Command.make("drill").pipe(
  Command.withDescription("Operational drills with real processes"),
  Command.withSubcommands([restore, failover])
)
