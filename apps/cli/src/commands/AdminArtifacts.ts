import { PgArtifacts } from "@cowork/postgres"
import { Artifacts, Audit, DAY_MS, Tokens } from "@cowork/services"
import { Config, Effect, Layer, Option } from "effect"
import * as Path from "node:path"
import { CliError, Command, Flag } from "effect/cli"
import { ExportRefused, exportOrgArtifacts, type ExportSummary, prepareDirectory } from "../ops/ArtifactExport.ts"
import * as StoreAt from "../ops/StoreAt.ts"
import { printJson } from "./AdminRegistry.ts"
import { CLI_ACTOR } from "./AdminToken.ts"

const MAX_DAYS = 36_500

/**
 * `cowork admin artifacts prune --older-than-days N [--org ORG]`: artifact retention by age — deletes the objects
 * (OPEN_COWORK_OBJECT_STORE_URI) and rows of artifacts created more than N days ago, of one org or of every org, and
 * audits `artifacts.pruned` in each affected org's log. Run it from cron; an interrupted run is finished by the next.
 */
const prune = Command.make("prune", {
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

/** `--since`: a date (`2026-01-31`, midnight UTC) or a date-time with its zone (`2026-01-31T12:00:00Z`, `…+02:00`). */
const SINCE_PATTERN = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/

const usage = (message: string) => new CliError.UserError({ cause: message, userMessage: message })

const parseSince = (raw: string): Effect.Effect<Date, CliError.UserError> => {
  const time = SINCE_PATTERN.test(raw) ? Date.parse(raw) : Number.NaN
  return Number.isNaN(time)
    ? Effect.fail(usage(`--since must be a date (2026-01-31) or a date-time with a zone (2026-01-31T12:00:00Z), got "${raw}"`))
    : Effect.succeed(new Date(time))
}

const exportError = (cause: unknown) =>
  new CliError.UserError({
    cause,
    userMessage: cause instanceof ExportRefused
      ? cause.message
      : `artifact export stopped (run again to resume): ${(cause as { readonly message?: unknown }).message ?? String(cause)}`
  })

/** Refuses an unusable `--to` before anything else happens (offboarding checks it before ending the org's work). */
export const checkExportDirectory = (orgId: string, dir: string) => prepareDirectory(dir, orgId).pipe(Effect.mapError(exportError))

/**
 * Exports the org's artifacts into `dir` (see ArtifactExport) from OPEN_COWORK_OBJECT_STORE_URI and audits
 * `artifacts.exported` in the org's log (counts only); returns the summary for the caller to print before
 * `exportProblems`. An org that does not exist is refused (naming `flag`); an offboarded one is exported.
 */
export const runArtifactExport = (orgId: string, dir: string, since: Date | undefined, flag: string) =>
  Effect.gen(function*() {
    if (!(yield* (yield* Tokens).listOrgs).some((org) => org.id === orgId)) return yield* usage(`${flag}: org ${orgId} not found`)
    const storeUri = yield* Config.String("OPEN_COWORK_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const summary = yield* exportOrgArtifacts({ orgId, dir, since }).pipe(
      Effect.provide(PgArtifacts.layer.pipe(Layer.provide(StoreAt.layer(storeUri)))),
      Effect.mapError(exportError)
    )
    yield* (yield* Audit).record({
      orgId,
      actor: CLI_ACTOR,
      action: "artifacts.exported",
      target: `org:${orgId}`,
      details: {
        since: summary.since,
        artifacts: summary.artifacts,
        exported: summary.exported,
        alreadyExported: summary.alreadyExported,
        bytes: summary.bytes,
        failed: summary.failed,
        orphans: summary.orphans
      }
    })
    return summary
  })

/** The error a summary with problems ends in (after it is printed): the artifacts left out, by id. */
export const exportProblems = (summary: ExportSummary): Effect.Effect<void, CliError.UserError> =>
  summary.failed === 0 ? Effect.void : Effect.fail(usage(
    `${summary.failed} artifact(s) not exported, their bytes do not match their rows or are missing: ${
      summary.problems.map((problem) => `${problem.id} (${problem.problem})`).join(", ")
    }${summary.failed > summary.problems.length ? ", …" : ""}`
  ))

/**
 * `cowork admin artifacts export --org ORG --to DIR [--since DATE]`: every artifact of the org (offboarded or not)
 * streamed from the object store into DIR with a manifest, each verified against its row's size and sha256; a rerun
 * resumes. Prints the summary; exits non-zero when an artifact could not be exported. Audited as `artifacts.exported`.
 */
const exportArtifacts = Command.make("export", {
  org: Flag.String("org").pipe(Flag.withDescription("The org whose artifacts to export")),
  to: Flag.String("to").pipe(Flag.withDescription("Directory to write (created if absent; empty or an earlier export of the org)")),
  since: Flag.String("since").pipe(
    Flag.withDescription("Only artifacts created at or after this date (2026-01-31) or date-time (2026-01-31T12:00:00Z)"),
    Flag.optional
  )
}, ({ org, to, since }) =>
  Effect.gen(function*() {
    const from = Option.isSome(since) ? yield* parseSince(since.value) : undefined
    const dir = Path.resolve(to)
    const summary = yield* runArtifactExport(org, dir, from, "--org")
    yield* printJson({ ...summary, dir })
    yield* exportProblems(summary)
  })).pipe(Command.withDescription("Export an org's artifacts (bytes + manifest, verified, resumable) into a directory, audited"))

export const command = Command.make("artifacts").pipe(
  Command.withDescription("Artifact retention and export"),
  Command.withSubcommands([prune, exportArtifacts])
)
