import { Api, CurrentPrincipal } from "@cowork/domain"
import { SessionStore } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { checkQuestionReply } from "./QuestionReplyCheck.ts"

/** Answers to a running turn's asks: each queued in the session's mailbox through `SessionStore.answer`. */
export const layer = HttpApiBuilder.group(Api, "sessionAsks", Effect.fn(function*(handlers) {
  const store = yield* SessionStore
  const accepted = (enqueued: { readonly commandId: string }) => ({ commandId: enqueued.commandId })
  return handlers.handleAll({
    permissionRespond: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return accepted(yield* store.answer(principal.orgId, params.id, { kind: "permission_respond", ...payload }))
      }),
    questionReply: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const answer = yield* checkQuestionReply(store, principal.orgId, params.id, { kind: "question_reply", ...payload })
        return accepted(yield* store.answer(principal.orgId, params.id, answer))
      }),
    questionReject: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return accepted(yield* store.answer(principal.orgId, params.id, { kind: "question_reject", ...payload }))
      })
  })
}))
