import { api, run } from "./api.ts"

/**
 * Answers to a running turn's permission requests and questions (`/api/sessions/:id/permission-respond`,
 * `question-reply`, `question-reject`): 202 with the answering command; the timeline shows the answer once the
 * worker has delivered it (`permission.replied`, `question.replied`, `question.rejected`).
 */
export const respondPermission = (sessionId: string, permissionId: string, response: "once" | "always" | "reject") =>
  run(api.sessionAsks.permissionRespond({ params: { id: sessionId }, payload: { permissionId, response } })).then(() => undefined)

export const replyQuestion = (sessionId: string, requestId: string, answers: ReadonlyArray<ReadonlyArray<string>>) =>
  run(api.sessionAsks.questionReply({ params: { id: sessionId }, payload: { requestId, answers } })).then(() => undefined)

export const rejectQuestion = (sessionId: string, requestId: string) =>
  run(api.sessionAsks.questionReject({ params: { id: sessionId }, payload: { requestId } })).then(() => undefined)
