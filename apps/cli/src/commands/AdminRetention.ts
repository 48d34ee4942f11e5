import { retentionPass, retentionDaysConfig, retentionPolicy } from "@cowork/services"
import { Effect, Option } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import { performance } from "node:perf_hooks"
import { printJson } from "./AdminRegistry.ts"

const MAX_DAYS = 36_500
const MAX_BATCH = 10_000

const days = (name: string, variable: string, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(`${description}; 0 keeps them forever (default: ${variable}, else 0)`), Flag.optional)

const bounded = (flag: string, value: number, min: number, max: number) =>
  value >= min && value <= max
    ? Effect.succeed(value)
    : Effect.fail(new CliError.UserError({ cause: flag, userMessage: `--${flag} must be between ${min} and ${max}` }))

/**
 * `cowork admin retention run [--commands-days N] [--events-days N] [--org ORG] [--batch N]`: one retention pass over
 * every session (or one org's), in batches of short transactions; prints what it deleted and how fast.
 */
const run = Command.make("run", {
  commandsDays: days("commands-days", "OPEN_COWORK_CLOUD_RETENTION_COMMAND_DAYS", "Delete acked and cancelled commands created more than N days ago"),
  eventsDays: days("events-days", "OPEN_COWORK_CLOUD_RETENTION_EVENT_DAYS", "Prune each session's events older than N days (up to its projection)"),
  org: Flag.String("org").pipe(Flag.withDescription("Only this org's sessions (default: every org)"), Flag.optional),
  batch: Flag.Int("batch").pipe(Flag.withDescription(`Sessions per transaction, 1-${MAX_BATCH}`), Flag.withDefault(500))
}, (input) =>
  Effect.gen(function*() {
    const configured = yield* retentionDaysConfig
    const commandDays = yield* bounded("commands-days", Option.getOrElse(input.commandsDays, () => configured.commandDays), 0, MAX_DAYS)
    const eventDays = yield* bounded("events-days", Option.getOrElse(input.eventsDays, () => configured.eventDays), 0, MAX_DAYS)
    const batch = yield* bounded("batch", input.batch, 1, MAX_BATCH)
    const policy = retentionPolicy(commandDays, eventDays, Option.getOrUndefined(input.org))
    const started = performance.now()
    const totals = yield* retentionPass(policy, batch)
    const seconds = (performance.now() - started) / 1000
    const deleted = totals.commandsDeleted + totals.eventsDeleted
    yield* printJson({
      policy: { commandDays, eventDays, orgId: policy.orgId ?? null },
      ...totals,
      seconds: Math.round(seconds * 1000) / 1000,
      rowsDeletedPerSecond: seconds > 0 ? Math.round(deleted / seconds) : deleted
    })
  })).pipe(Command.withDescription("Delete old acked commands and prune old events (clients resuming behind get snapshot.required)"))

export const command = Command.make("retention").pipe(
  Command.withDescription("History retention: acked commands and session events by age"),
  Command.withSubcommands([run])
)

