import {
  Api,
  BadRequest,
  Conflict,
  CurrentPrincipal,
  DEFAULT_CATCH_UP_WINDOW_SECONDS,
  DEFAULT_PAGE_SIZE,
  newTriggerId,
  Unavailable,
  type WorkflowTrigger
} from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { SecretAdapter, startManualRun, validateTriggers, WebhookSignature, WorkflowStore } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { QuotaPolicy } from "./QuotaPolicy.ts"

const RECENT_RUNS = 10

/** Where a webhook trigger's sealed secret belongs: opening it anywhere else fails like tampering. */
export const webhookSecretContext = (triggerId: string) => `workflow-webhook-secret:${triggerId}`

/** The workflow routes: org-scoped; webhook secrets are sealed with the org's data key and shown once. */
export const layer = HttpApiBuilder.group(Api, "workflows", Effect.fn(function*(handlers) {
  const store = yield* WorkflowStore
  const secrets = yield* SecretAdapter
  const metrics = yield* Metrics
  const quotaPolicy = yield* QuotaPolicy

  const seal = (orgId: string, triggerId: string, secret: string) =>
    secrets.encrypt(orgId, new TextEncoder().encode(secret), webhookSecretContext(triggerId)).pipe(
      Effect.mapError(() => new Unavailable({ message: "the secret adapter is unavailable; retry later", retryAfterSeconds: 5 }))
    )

  return handlers.handleAll({
    create: ({ payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const issue = validateTriggers(payload.triggers)
        if (issue !== undefined) {
          return yield* new BadRequest({ message: `invalid body field \`${issue.field}\`: ${issue.message}`, field: issue.field })
        }
        const triggers: Array<WorkflowTrigger> = payload.triggers.map((trigger) => ({
          id: trigger.id ?? newTriggerId(),
          type: trigger.type,
          enabled: trigger.enabled,
          ...(trigger.schedule === undefined ? {} : { schedule: trigger.schedule })
        }))
        const webhookSecrets = triggers.filter((t) => t.type === "webhook").map((t) => ({ triggerId: t.id, secret: WebhookSignature.newSecret() }))
        const sealedSecrets = yield* Effect.forEach(webhookSecrets, ({ triggerId, secret }) =>
          Effect.map(seal(principal.orgId, triggerId, secret), (sealed) => ({ triggerId, sealed })))
        const workflow = yield* store.create(principal.orgId, {
          title: payload.title,
          instructions: payload.instructions,
          agentName: payload.agentName,
          skillNames: payload.skillNames ?? [],
          toolIds: payload.toolIds ?? [],
          steps: payload.steps ?? [],
          triggers,
          overlapPolicy: payload.overlapPolicy ?? "skip",
          catchUpWindowSeconds: payload.catchUpWindowSeconds ?? DEFAULT_CATCH_UP_WINDOW_SECONDS,
          catchUpMode: payload.catchUpMode ?? "each",
          sealedSecrets
        })
        return { workflow, webhookSecrets }
      }),
    list: ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* store.list(principal.orgId, { limit: query.limit ?? DEFAULT_PAGE_SIZE, cursor: query.cursor })
      }),
    get: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* store.get(principal.orgId, params.id, RECENT_RUNS)
      }),
    run: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const run = yield* quotaPolicy.counted(startManualRun(principal.orgId, params.id, { defaults: quotaPolicy.defaults })).pipe(Effect.catchTag("Replayed", (e) => Effect.fail(new Conflict({ message: e.message }))))
        yield* metrics.inc("open_cowork_cloud_scheduler_runs_started_total", { trigger: "manual" })
        return { run }
      }),
    pause: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { workflow: yield* store.setLifecycle(principal.orgId, params.id, "pause") }
      }),
    resume: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { workflow: yield* store.setLifecycle(principal.orgId, params.id, "resume") }
      }),
    archive: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { workflow: yield* store.setLifecycle(principal.orgId, params.id, "archive").pipe(Effect.catchTag("Conflict", Effect.die)) }
      }),
    runs: ({ params, query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* store.listRuns(principal.orgId, params.id, { limit: query.limit ?? DEFAULT_PAGE_SIZE, cursor: query.cursor })
      }),
    rotateSecret: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        // Ownership first: another org's workflow must be a 404 before anything is sealed with this org's key.
        yield* store.get(principal.orgId, params.id, 0)
        const secret = WebhookSignature.newSecret()
        const sealed = yield* seal(principal.orgId, params.tid, secret)
        yield* store.rotateSecret(principal.orgId, params.id, params.tid, sealed)
        return { triggerId: params.tid, secret }
      })
  })
}))
