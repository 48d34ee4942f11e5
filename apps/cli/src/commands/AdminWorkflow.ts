import { Audit, quotaDefaults, startManualRun, Tokens, WorkflowStore } from "@cowork/services"
import { Effect, Option } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { printJson, userError, userErrors } from "./AdminRegistry.ts"
import { CLI_ACTOR } from "./AdminToken.ts"

/** The org that owns a workflow (operators name workflows by id; the store stays org-scoped). */
const ownerOf = (workflowId: string) =>
  Effect.gen(function*() {
    const target = yield* (yield* WorkflowStore).webhookTarget(workflowId)
    if (Option.isNone(target)) {
      return yield* new CliError.UserError({ cause: workflowId, userMessage: `workflow ${workflowId} not found` })
    }
    return target.value.orgId
  })

const workflowId = Argument.String("workflow-id").pipe(Argument.withDescription("Workflow id (wf_…)"))

/** `cowork admin workflow list [--org ORG] [--limit N]`: newest first, one JSON document. */
const list = Command.make("list", {
  org: Flag.String("org").pipe(Flag.withDescription("Org id (default: the bootstrap org)"), Flag.optional),
  limit: Flag.Int("limit").pipe(Flag.withDescription("Page size, 1-100"), Flag.withDefault(50))
}, (input) =>
  Effect.gen(function*() {
    const orgId = Option.isSome(input.org) ? input.org.value : (yield* (yield* Tokens).bootstrap("default")).orgId
    yield* printJson(yield* (yield* WorkflowStore).list(orgId, { limit: Math.max(1, Math.min(100, input.limit)) }))
  })).pipe(Command.withDescription("List an org's workflows with status, nextRunAt and latest run (GET /api/workflows)"))

/**
 * `cowork admin workflow run wf_… [--force]`: a manual run now (a session with the workflow's prompt), under the org's
 * `workflow_runs_per_hour` like the API's; `--force` runs it past the quota, audited as `workflow.run_forced`.
 */
const run = Command.make("run", {
  id: workflowId,
  force: Flag.Boolean("force").pipe(
    Flag.withDescription("Run even when the org's workflow_runs_per_hour quota is used up (audited; the run still counts)"),
    Flag.withDefault(false)
  )
}, ({ id, force }) =>
  Effect.gen(function*() {
    const orgId = yield* ownerOf(id)
    const started = yield* startManualRun(orgId, id, { defaults: yield* quotaDefaults, force }).pipe(
      Effect.mapError((error) =>
        error._tag === "RateLimited"
          ? new CliError.UserError({ cause: error, userMessage: `${error.message} (--force runs it anyway)` })
          : userError(error)
      )
    )
    if (force) {
      yield* (yield* Audit).record({ orgId, actor: CLI_ACTOR, action: "workflow.run_forced", target: `workflow:${id}`, details: { runId: started.id } })
    }
    yield* printJson({ run: started })
  })).pipe(Command.withDescription("Start a manual run now, under the org's workflow_runs_per_hour quota unless --force (POST /api/workflows/:id/run)"))

const lifecycle = (action: "pause" | "resume", description: string) =>
  Command.make(action, { id: workflowId }, ({ id }) =>
    Effect.gen(function*() {
      const orgId = yield* ownerOf(id)
      yield* printJson({ workflow: yield* (yield* WorkflowStore).setLifecycle(orgId, id, action).pipe(userErrors) })
    })).pipe(Command.withDescription(`${description} (POST /api/workflows/:id/${action})`))

export const command = Command.make("workflow").pipe(
  Command.withDescription("Workflows: list, run now, pause and resume scheduling"),
  Command.withSubcommands([
    list,
    run,
    lifecycle("pause", "Stop firing scheduled slots"),
    lifecycle("resume", "Resume scheduling from now (slots missed while paused are not owed)")
  ])
)
