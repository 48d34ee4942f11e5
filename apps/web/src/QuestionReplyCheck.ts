import { answerCountProblem, type AskAnswer, BadRequest, type NotFound } from "@cowork/domain"
import type { SessionStore } from "@cowork/services"
import { Effect } from "effect"

/**
 * A `question_reply` checked against the session's pending question before it is queued: one list of answers per
 * question asked, else a 400 naming `answers`. Other answers, and a reply whose question is not pending (the store
 * answers that: the same command again, or 409), pass unchanged.
 */
export const checkQuestionReply = (
  sessions: SessionStore["Service"],
  orgId: string,
  sessionId: string,
  answer: AskAnswer
): Effect.Effect<AskAnswer, BadRequest | NotFound> =>
  answer.kind !== "question_reply"
    ? Effect.succeed(answer)
    : Effect.gen(function*() {
      const pending = (yield* sessions.view(orgId, sessionId)).pendingQuestions.find((q) => q.requestId === answer.requestId)
      const problem = pending === undefined ? undefined : answerCountProblem(pending, answer.answers)
      if (problem !== undefined) return yield* new BadRequest({ message: problem, field: "answers" })
      return answer
    })
