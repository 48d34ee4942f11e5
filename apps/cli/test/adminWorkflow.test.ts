import { Database, PgWorkflowStore } from "@cowork/postgres"
import { WorkflowStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { workflowInput } from "../../../packages/services/test/support/WorkflowStoreContract.ts"
import { runCli } from "../../../test/support/CoworkProcess.ts"

/** `cowork admin workflow list|run|pause|resume` as a real process against a fresh database; `run` under the org's quota. */

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!)

const scenario = (url: string) =>
  Effect.gen(function*() {
    const env = { OPEN_COWORK_DATABASE_URL: url }
    const cli = (...args: ReadonlyArray<string>) => runCli(["admin", ...args], env)
    yield* runCli(["migrate"], env)
    const sql = yield* SqlClient.SqlClient
    // The bootstrap org, as `cowork up` creates it.
    yield* cli("token", "create", "--scopes", "web")
    const orgId = (yield* sql<{ id: string }>`SELECT id FROM cloud_orgs`.pipe(Effect.orDie))[0]!.id
    const created = yield* (yield* WorkflowStore).create(orgId, workflowInput({
      triggers: [{ id: "daily", type: "schedule", enabled: true, schedule: { type: "daily", timezone: "Europe/Paris", runAtHour: 7, runAtMinute: 0 } }]
    }))

    const listed = json((yield* cli("workflow", "list")).stdout)
    assert.deepStrictEqual(listed.workflows.map((w: { id: string }) => w.id), [created.id])
    assert.strictEqual(listed.totalEstimate, 1)

    const { run } = json((yield* cli("workflow", "run", created.id)).stdout)
    assert.deepInclude(run, { workflowId: created.id, triggerType: "manual", status: "queued" })
    const prompts = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_session_commands WHERE session_id = ${run.sessionId}`.pipe(Effect.orDie)
    assert.strictEqual(prompts[0]!.n, 1)

    assert.strictEqual(json((yield* cli("workflow", "pause", created.id)).stdout).workflow.status, "paused")
    const resumed = json((yield* cli("workflow", "resume", created.id)).stdout).workflow
    assert.strictEqual(resumed.status, "running", "active, with its manual run still queued")
    assert.isString(resumed.nextRunAt)
    const missing = yield* Effect.flip(cli("workflow", "run", "wf_missing"))
    assert.include(missing.message, "workflow wf_missing not found")

    // The org's workflow_runs_per_hour holds for the operator's runs as for the API's: one run so far this hour.
    yield* cli("org", "quota", "--quota", "workflow_runs_per_hour", "--value", "1", orgId)
    const refused = yield* Effect.flip(cli("workflow", "run", created.id))
    assert.include(refused.message, "the organization's workflow runs per hour quota (1) is used up (--force runs it anyway)")
    const runs = () => sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_workflow_runs WHERE workflow_id = ${created.id}`.pipe(Effect.orDie)
    assert.strictEqual((yield* runs())[0]!.n, 1, "the refused run wrote nothing")
    const forced = json((yield* cli("workflow", "run", "--force", created.id)).stdout).run
    assert.deepInclude(forced, { workflowId: created.id, triggerType: "manual" })
    assert.strictEqual((yield* runs())[0]!.n, 2)
    const audit = yield* sql<{ actor: string; target: string; details: { runId: string } }>`
      SELECT actor, target, details FROM cloud_audit_events WHERE org_id = ${orgId} AND action = 'workflow.run_forced'`.pipe(Effect.orDie)
    assert.deepStrictEqual(audit.map((row) => [row.target, row.details.runId]), [[`workflow:${created.id}`, forced.id]])
  })

it.live("lists an org's workflows, runs one now (under the org's workflow_runs_per_hour unless --force, audited), pauses and resumes it; an unknown id is a user error", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    return yield* scenario(url).pipe(Effect.provide(PgWorkflowStore.layer.pipe(
      Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "cli-test" }))
    )))
  }), 120_000)
