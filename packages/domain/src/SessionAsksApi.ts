import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { PermissionResponse } from "./Command.ts"
import { Id, Text } from "./Input.ts"

/** Most questions one reply answers, and most labels chosen per question. */
export const MAX_QUESTION_ANSWERS = 20
export const MAX_ANSWER_LABELS = 50

export const PermissionRespondBody = Schema.Struct({
  permissionId: Id,
  /** `once` (allow this call), `always` (allow for the rest of the session), `reject`. */
  response: PermissionResponse
})

export const QuestionReplyBody = Schema.Struct({
  requestId: Id,
  /** One list of chosen option labels (or free text) per question, in the order asked. */
  answers: Schema.Array(Schema.Array(Text(2_000)).check(Schema.isMaxLength(MAX_ANSWER_LABELS))).check(
    Schema.isMaxLength(MAX_QUESTION_ANSWERS)
  )
})

export const QuestionRejectBody = Schema.Struct({ requestId: Id })

const AskAccepted = Schema.Struct({ commandId: Schema.String }).pipe(HttpApiSchema.status(202))
const errors = [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]

/**
 * Human in the loop: answers to the permission requests and questions a running turn waits on. Each answer is a
 * command in the session's mailbox (one per ask: the same answer again from the same caller returns the same command;
 * any other answer is 409 with `details.reason: "answered"` and `answeredBy` / `answeredVia` / `answeredAt`),
 * delivered by the session's worker to the live runtime; 409 `session_aborted` / `not_pending` when the ask cannot be
 * answered any more.
 */
export class SessionAsksApi extends HttpApiGroup.make("sessionAsks")
  .add(
    HttpApiEndpoint.post("permissionRespond", "/api/sessions/:id/permission-respond", {
      params: { id: Id },
      payload: PermissionRespondBody,
      success: AskAccepted,
      error: errors
    }).annotate(OpenApi.Description, "Answers a pending `permission.requested`: 202 `{commandId}`; the turn continues once the worker delivers it (`permission.replied`)."),
    HttpApiEndpoint.post("questionReply", "/api/sessions/:id/question-reply", {
      params: { id: Id },
      payload: QuestionReplyBody,
      success: AskAccepted,
      error: errors
    }).annotate(OpenApi.Description, "Answers a pending `question.asked`: 202 `{commandId}` (`question.replied` once delivered)."),
    HttpApiEndpoint.post("questionReject", "/api/sessions/:id/question-reject", {
      params: { id: Id },
      payload: QuestionRejectBody,
      success: AskAccepted,
      error: errors
    }).annotate(OpenApi.Description, "Declines a pending `question.asked`: 202 `{commandId}` (`question.rejected` once delivered).")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Session asks", description: "Answer the permission requests and questions of a running turn. A refused answer is 409 with `details.reason`: `answered` (with `answeredBy`, `answeredVia`, `answeredAt`: who answered, where, when), `session_aborted`, `not_pending`." }))
{}
