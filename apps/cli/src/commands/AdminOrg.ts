import { applyArtifactRetention, Audit, Offboarding, Tokens } from "@cowork/services"
import { PgArtifacts } from "@cowork/postgres"
import { Config, Effect, Layer } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as StoreAt from "../ops/StoreAt.ts"
import { printJson, userErrors } from "./AdminRegistry.ts"
import { CLI_ACTOR } from "./AdminToken.ts"

/** `cowork admin org create --name NAME`: a new org (no token; issue one with `token create --org`). */
export const create = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("Org name"))
}, (input) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const { orgId } = yield* tokens.createOrg(input.name)
    const org = (yield* tokens.listOrgs).find((candidate) => candidate.id === orgId)
    yield* printJson({ org })
  })).pipe(Command.withDescription("Create an org; then issue its first token with `cowork admin token create --org <id>`"))

export const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    yield* printJson({ orgs: yield* (yield* Tokens).listOrgs })
  })).pipe(Command.withDescription("List orgs: id, name, createdAt"))

/**
 * `cowork admin org offboard <orgId>`: runbook "Tenant Offboarding" in one transaction — tokens and browser sessions
 * revoked, pending commands cancelled, sessions aborted, workflows archived, channel bindings disabled and their open
 * deliveries dead-lettered — then prints what was ended and what
 * remains (running prompts finish on their own: the command waits for them up to `--wait-ms`).
 */
export const offboard = Command.make("offboard", {
  id: Argument.String("org-id").pipe(Argument.withDescription("Org id (org_…)")),
  waitMs: Flag.Int("wait-ms").pipe(Flag.withDescription("How long to wait for running prompts to finish"), Flag.withDefault(60_000)),
  artifacts: Flag.Literals("artifacts", ["retain", "delete"]).pipe(
    Flag.withDescription("Retention policy for the org's artifacts: retain (default) or delete their objects and rows (OPEN_COWORK_OBJECT_STORE_URI)"),
    Flag.withDefault("retain" as const)
  )
}, ({ id, waitMs, artifacts: policy }) =>
  Effect.gen(function*() {
    const offboarding = yield* Offboarding
    const report = yield* offboarding.offboard(id).pipe(userErrors)
    const storeUri = yield* Config.String("OPEN_COWORK_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const artifacts = yield* applyArtifactRetention(id, policy).pipe(
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
      details: { ended: report.ended, artifacts }
    })
    const deadline = Date.now() + waitMs
    let remaining = report.remaining
    while (remaining.runningCommands > 0 && Date.now() < deadline) {
      yield* Effect.sleep("1 second")
      remaining = yield* offboarding.activity(id).pipe(userErrors)
    }
    const active = Object.values(remaining).some((count) => count > 0)
    yield* printJson({ ...report, remaining, artifacts, complete: !active })
  })).pipe(Command.withDescription("Offboard an org: end every credential and all its work; report what remains"))

export const command = Command.make("org").pipe(
  Command.withDescription("Orgs (tenants)"),
  Command.withSubcommands([create, list, offboard])
)
