import { askOf, type AskAnswer, BadRequest, type ChannelAnswerBody, type Conflict, type NotFound, type SessionView } from "@cowork/domain"
import { alreadyAnswered, askNotPending, sessionAborted, type SessionStore } from "@cowork/services"
import { Effect } from "effect"

/**
 * Why an answer to `ask` would be refused, in the order the store refuses one: answered already (who, where, when),
 * the session aborted, the ask not pending (its turn ended, or never asked there); `undefined` while it still takes its
 * answer. The answer's own content is not looked at.
 */
export const closedAskRefusal = (
  sessions: SessionStore["Service"],
  orgId: string,
  sessionId: string,
  ask: AskAnswer,
  view: SessionView
): Effect.Effect<Conflict | undefined, NotFound> =>
  Effect.gen(function*() {
    const existing = yield* sessions.existingAnswer(orgId, sessionId, ask)
    if (existing !== undefined) return alreadyAnswered(existing, ask)
    if (view.status === "aborted") return sessionAborted(sessionId, ask)
    const { ask: kind, askId } = askOf(ask)
    const pending = kind === "question"
      ? view.pendingQuestions.some((question) => question.requestId === askId)
      : view.pendingPermissions.some((permission) => permission.permissionId === askId)
    return pending ? undefined : askNotPending(ask)
  })

/** The ask a chat answer names (its kind and id; not its content), or a 400 naming the missing id. */
export const askNamedBy = (body: ChannelAnswerBody): Effect.Effect<AskAnswer, BadRequest> => {
  if (body.action === "permission-respond") {
    return body.permissionId === undefined
      ? Effect.fail(new BadRequest({ message: "`permissionId` is required for permission-respond", field: "permissionId" }))
      : Effect.succeed({ kind: "permission_respond", permissionId: body.permissionId, response: body.response ?? "reject" })
  }
  return body.requestId === undefined
    ? Effect.fail(new BadRequest({ message: `\`requestId\` is required for ${body.action}`, field: "requestId" }))
    : Effect.succeed({ kind: "question_reply", requestId: body.requestId, answers: [] })
}
