import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { OperatorAuthentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Id, Text } from "./Input.ts"

/**
 * The operator's queue controls besides abort (no direct database edits): retry a session's failed prompt, take a
 * pending command out of its mailbox. An org's operator or admin token reaches its own org's sessions and commands
 * (another org's is a 404); a platform operator token every org's.
 */

export const SessionRetried = Schema.Struct({
  /** The new prompt command. */
  commandId: Schema.String,
  /** The failed or dead prompt it runs again. */
  retriedCommandId: Schema.String
})

export const CommandDeadLetterBody = Schema.Struct({ reason: Schema.optional(Text(500).check(Schema.isMinLength(1))) })

export const DeadLetteredCommandView = Schema.Struct({
  command: Schema.Struct({ id: Schema.String, sessionId: Schema.String, kind: Schema.String, status: Schema.Literal("dead") })
})

export class QueueControlsApi extends HttpApiGroup.make("queueControls")
  .add(
    HttpApiEndpoint.post("retrySession", "/api/sessions/:id/retry", {
      params: { id: Id },
      success: SessionRetried.pipe(HttpApiSchema.status(202)),
      error: [ApiError.NotFound, ApiError.Conflict, ApiError.RateLimited]
    }).annotate(
      OpenApi.Description,
      "Queues the session's latest prompt again (same text and agent) when it failed or went dead; 409 when it did not. Retrying the same failed prompt twice returns the same new command."
    ),
    HttpApiEndpoint.post("deadLetterCommand", "/api/admin/commands/:id/dead-letter", {
      params: { id: Id },
      payload: CommandDeadLetterBody,
      success: DeadLetteredCommandView,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(
      OpenApi.Description,
      "Marks a pending command `dead` (its `reason` kept as the command's error) so its session's owner never runs it, and appends `command.dead_lettered` `{commandId, kind, reason, cause: \"operator\"}` to the session's stream in the same transaction (then `session.status` idle when nothing else is pending or running; for an answer whose ask is still pending, the ask again — `permission.requested` / `question.asked` with `answerLost` `{commandId, reason}` — and the ask takes a new answer); 409 naming the status when it is not pending (abort the session to stop a running one). The reason is visible to the session's readers."
    )
  )
  .middleware(OperatorAuthentication)
  .annotate(RequiredScopes, ["operator", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Queue controls", description: "Retry a failed prompt, dead-letter a pending command" }))
{}
