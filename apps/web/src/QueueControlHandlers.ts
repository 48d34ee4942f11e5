import { Api, Conflict, CurrentCaller } from "@cowork/domain"
import { QueueControls, SessionStore } from "@cowork/services"
import { Effect, Option } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { recordAudit } from "./AuditHandlers.ts"

const DEFAULT_REASON = "dead-lettered by an operator"

/**
 * The operator's queue controls: `POST /api/sessions/:id/retry` queues the session's failed (or dead) latest prompt
 * again through the one prompt path (quotas, `prompt.submitted`, NOTIFY; its idempotency key is the failed command's
 * id, so a repeated retry returns the same command), and `POST /api/admin/commands/:id/dead-letter` takes a pending
 * command out of the mailbox. An org's token reaches its own org only; a platform operator every org. Both audited.
 */
export const layer = HttpApiBuilder.group(Api, "queueControls", Effect.fn(function*(handlers) {
  const controls = yield* QueueControls
  const sessions = yield* SessionStore

  const scope = Effect.map(CurrentCaller, (caller) => ({
    orgId: caller.kind === "org" ? caller.orgId : undefined,
    actor: caller.kind === "platform" ? `platform-token:${caller.tokenId}` : `token:${caller.tokenId}`
  }))

  return handlers
    .handle("retrySession", ({ params }) =>
      Effect.gen(function*() {
        const caller = yield* scope
        const failed = yield* controls.latestFailedPrompt(caller.orgId, params.id)
        if (Option.isNone(failed)) {
          return yield* new Conflict({ message: `session ${params.id} has no failed prompt to retry: its latest prompt did not fail`, details: { field: "id" } })
        }
        const { commandId: retriedCommandId, orgId, text, agent } = failed.value
        const queued = yield* sessions.prompt(orgId, params.id, { text, agent, idempotencyKey: `retry:${retriedCommandId}` })
        if (queued.created) {
          yield* recordAudit({
            orgId,
            actor: caller.actor,
            action: "session.retried",
            target: `session:${params.id}`,
            details: { commandId: queued.commandId, retriedCommandId }
          })
        }
        return { commandId: queued.commandId, retriedCommandId }
      }))
    .handle("deadLetterCommand", ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* scope
        const reason = payload.reason ?? DEFAULT_REASON
        const dead = yield* controls.deadLetter(caller.orgId, params.id, reason)
        yield* recordAudit({
          orgId: dead.orgId,
          actor: caller.actor,
          action: "command.dead_lettered",
          target: `command:${dead.commandId}`,
          details: { sessionId: dead.sessionId, kind: dead.kind, reason }
        })
        return { command: { id: dead.commandId, sessionId: dead.sessionId, kind: dead.kind, status: "dead" as const } }
      }))
}))
