import { PgArtifacts } from "@cowork/postgres"
import { Artifacts, Audit, DAY_MS } from "@cowork/services"
import { Config, Effect, Layer, Option } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as StoreAt from "../ops/StoreAt.ts"
import { printJson } from "./AdminRegistry.ts"
import { CLI_ACTOR } from "./AdminToken.ts"

const MAX_DAYS = 36_500

/**
 * `cowork admin artifacts prune --older-than-days N [--org ORG]`: artifact retention by age — deletes the objects
 * (OPEN_COWORK_OBJECT_STORE_URI) and rows of artifacts created more than N days ago, of one org or of every org, and
 * audits `artifacts.pruned` in each affected org's log. Run it from cron; an interrupted run is finished by the next.
 */
export const prune = Command.make("prune", {
  days: Flag.Int("older-than-days").pipe(Flag.withDescription(`Delete artifacts created more than N days ago (1-${MAX_DAYS})`)),
  org: Flag.String("org").pipe(Flag.withDescription("Only this org's artifacts (default: every org)"), Flag.optional)
}, ({ days, org }) =>
  Effect.gen(function*() {
    if (days < 1 || days > MAX_DAYS) {
      return yield* new CliError.UserError({ cause: days, userMessage: `--older-than-days must be between 1 and ${MAX_DAYS}` })
    }
    const storeUri = yield* Config.String("OPEN_COWORK_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const pruned = yield* Effect.flatMap(Effect.service(Artifacts), (artifacts) =>
      artifacts.deleteOlderThan(days * DAY_MS, Option.getOrUndefined(org))).pipe(
        Effect.provide(PgArtifacts.layer.pipe(Layer.provide(StoreAt.layer(storeUri)))),
        Effect.mapError((cause) =>
          new CliError.UserError({
            cause,
            userMessage: `artifact retention stopped (run again to finish): ${(cause as { readonly message?: unknown }).message ?? String(cause)}`
          })
        )
      )
    const audit = yield* Audit
    for (const entry of pruned) {
      yield* audit.record({
        orgId: entry.orgId,
        actor: CLI_ACTOR,
        action: "artifacts.pruned",
        target: `org:${entry.orgId}`,
        details: { olderThanDays: days, artifacts: entry.artifacts, bytes: entry.bytes }
      })
    }
    yield* printJson({ olderThanDays: days, orgId: Option.getOrNull(org), orgs: pruned })
  })).pipe(Command.withDescription("Delete artifacts older than N days (objects and rows), audited per org"))

export const command = Command.make("artifacts").pipe(
  Command.withDescription("Artifact retention"),
  Command.withSubcommands([prune])
)
