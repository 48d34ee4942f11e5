import { QuotaName } from "@cowork/domain"
import { applyArtifactRetention, Audit, effectiveQuotas, Offboarding, quotaDefaults, Quotas, Tokens } from "@cowork/services"
import { PgArtifacts } from "@cowork/postgres"
import { Config, Effect, Layer, Option } from "effect"
import * as Path from "node:path"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as StoreAt from "../ops/StoreAt.ts"
import { checkExportDirectory, exportProblems, runArtifactExport } from "./AdminArtifacts.ts"
import { printJson, userErrors } from "./AdminRegistry.ts"
import { CLI_ACTOR } from "./AdminToken.ts"

/** `cowork admin org create --name NAME`: a new org (no token; issue one with `token create --org`). */
const create = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("Org name"))
}, (input) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const { orgId } = yield* tokens.createOrg(input.name)
    const org = (yield* tokens.listOrgs).find((candidate) => candidate.id === orgId)
    yield* printJson({ org })
  })).pipe(Command.withDescription("Create an org; then issue its first token with `cowork admin token create --org <id>`"))

const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    yield* printJson({ orgs: yield* (yield* Tokens).listOrgs })
  })).pipe(Command.withDescription("List orgs: id, name, createdAt"))

/**
 * `cowork admin org offboard <orgId>`: runbook "Tenant Offboarding" in one transaction — tokens and browser sessions
 * revoked, pending commands cancelled, sessions aborted, workflows archived, channel bindings disabled and their open
 * deliveries dead-lettered — then prints what was ended and what
 * remains (running prompts finish on their own: the command waits for them up to `--wait-ms`). `--artifacts export
 * --to DIR` then exports the org's artifacts as `admin artifacts export` does, and keeps them.
 */
const offboard = Command.make("offboard", {
  id: Argument.String("org-id").pipe(Argument.withDescription("Org id (org_…)")),
  waitMs: Flag.Int("wait-ms").pipe(Flag.withDescription("How long to wait for running prompts to finish"), Flag.withDefault(60_000)),
  artifacts: Flag.Literals("artifacts", ["retain", "delete", "export"]).pipe(
    Flag.withDescription(
      "Retention policy for the org's artifacts: retain (default), delete their objects and rows, or export them into --to DIR and keep them (OPEN_COWORK_OBJECT_STORE_URI)"
    ),
    Flag.withDefault("retain" as const)
  ),
  to: Flag.String("to").pipe(
    Flag.withDescription("With --artifacts export: the directory to export into (as `admin artifacts export --to`)"),
    Flag.optional
  )
}, ({ id, waitMs, artifacts: choice, to }) =>
  Effect.gen(function*() {
    const usage = (message: string) => new CliError.UserError({ cause: message, userMessage: message })
    if (choice === "export" && Option.isNone(to)) return yield* usage("--artifacts export needs --to DIR")
    if (choice !== "export" && Option.isSome(to)) return yield* usage("--to is only used with --artifacts export")
    const dir = Option.map(to, (path) => Path.resolve(path))
    if (Option.isSome(dir)) yield* checkExportDirectory(id, dir.value)
    const offboarding = yield* Offboarding
    const report = yield* offboarding.offboard(id).pipe(userErrors)
    const storeUri = yield* Config.String("OPEN_COWORK_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const retained = yield* applyArtifactRetention(id, choice === "delete" ? "delete" : "retain").pipe(
      Effect.provide(PgArtifacts.layer.pipe(Layer.provide(StoreAt.layer(storeUri)))),
      Effect.mapError((cause) =>
        new CliError.UserError({
          cause,
          userMessage: `the org is offboarded, but its artifacts could not be handled (run again to finish): ${
            (cause as { readonly message?: unknown }).message ?? String(cause)
          }`
        })
      )
    )
    yield* (yield* Audit).record({
      orgId: id,
      actor: CLI_ACTOR,
      action: "org.offboarded",
      target: `org:${id}`,
      details: { ended: report.ended, artifacts: choice === "export" ? { ...retained, policy: choice } : retained }
    })
    const deadline = Date.now() + waitMs
    let remaining = report.remaining
    while (remaining.runningCommands > 0 && Date.now() < deadline) {
      yield* Effect.sleep("1 second")
      remaining = yield* offboarding.activity(id).pipe(userErrors)
    }
    const active = Object.values(remaining).some((count) => count > 0)
    if (Option.isNone(dir)) return yield* printJson({ ...report, remaining, artifacts: retained, complete: !active })
    // After the wait: a prompt that was still running may have attached one more artifact.
    const rerun = `run \`cowork admin artifacts export --org ${id} --to ${dir.value}\` to finish`
    const exported = yield* runArtifactExport(id, dir.value, undefined, "org-id").pipe(
      Effect.mapError((cause) =>
        usage(`the org is offboarded, but its artifacts were not exported (${rerun}): ${"userMessage" in cause ? cause.userMessage : cause.message}`)
      )
    )
    const artifacts = { ...retained, policy: choice, exported: { ...exported, dir: dir.value } }
    yield* printJson({ ...report, remaining, artifacts, complete: !active })
    yield* exportProblems(exported).pipe(
      Effect.mapError((cause) => usage(`the org is offboarded, but not all of its artifacts were exported: ${cause.userMessage}`))
    )
  })).pipe(Command.withDescription("Offboard an org: end every credential and all its work; report what remains"))

/**
 * `cowork admin org quota <orgId> [--quota NAME (--value N | --clear)]`: sets or clears one per-org quota override
 * (applies at the next admission, no restart), audited as `quota.override_set` / `quota.override_cleared`; prints the
 * org's overrides and effective quotas (over the OPEN_COWORK_CLOUD_QUOTA_* defaults of this environment).
 */
const quota = Command.make("quota", {
  id: Argument.String("org-id").pipe(Argument.withDescription("Org id (org_…)")),
  quota: Flag.Literals("quota", QuotaName.literals).pipe(Flag.withDescription("The quota to override"), Flag.optional),
  value: Flag.Int("value").pipe(Flag.withDescription("The org's limit (0 or more)"), Flag.optional),
  clear: Flag.Boolean("clear").pipe(Flag.withDescription("Remove the override: back to the default"), Flag.withDefault(false))
}, ({ id, quota: name, value, clear }) =>
  Effect.gen(function*() {
    const quotas = yield* Quotas
    const usage = (message: string) => new CliError.UserError({ cause: message, userMessage: message })
    if (!(yield* (yield* Tokens).listOrgs).some((org) => org.id === id)) return yield* usage(`org ${id} not found`)
    if (Option.isSome(name)) {
      if (clear === Option.isSome(value)) return yield* usage("give --value N or --clear with --quota")
      if (Option.isSome(value) && value.value < 0) return yield* usage("--value must be 0 or more")
      const before = (yield* quotas.overrides(id))[name.value] ?? null
      const after = Option.getOrNull(value)
      yield* quotas.setOverride(id, name.value, after)
      yield* (yield* Audit).record({
        orgId: id,
        actor: CLI_ACTOR,
        action: after === null ? "quota.override_cleared" : "quota.override_set",
        target: `quota:${name.value}`,
        details: { from: before, to: after }
      })
    } else if (clear || Option.isSome(value)) {
      return yield* usage("--value and --clear need --quota")
    }
    const overrides = yield* quotas.overrides(id)
    yield* printJson({ orgId: id, overrides, effective: effectiveQuotas(yield* quotaDefaults, overrides) })
  })).pipe(Command.withDescription("Show, set or clear an org's quota overrides (audited)"))

export const command = Command.make("org").pipe(
  Command.withDescription("Orgs (tenants)"),
  Command.withSubcommands([create, list, offboard, quota])
)
