import { Api, CurrentPrincipal, type OrgPrincipal } from "@cowork/domain"
import { SessionStore } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { checkQuestionReply } from "./QuestionReplyCheck.ts"

/**
 * Who answers from the web: a browser session's email (its account id without one), else the API token's id (never
 * its secret). Recorded with the answer, so a later answer from anyone else is a 409 naming who answered and when.
 */
const answerer = (principal: OrgPrincipal) =>
  principal.browserSession === undefined
    ? { answeredBy: principal.tokenId, answeredVia: "api" }
    : { answeredBy: principal.browserSession.email ?? principal.browserSession.accountId, answeredVia: "web" }

/** Answers to a running turn's asks: each queued in the session's mailbox through `SessionStore.answer`. */
export const layer = HttpApiBuilder.group(Api, "sessionAsks", Effect.fn(function*(handlers) {
  const store = yield* SessionStore
  const accepted = (enqueued: { readonly commandId: string }) => ({ commandId: enqueued.commandId })
  return handlers.handleAll({
    permissionRespond: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return accepted(yield* store.answer(principal.orgId, params.id, { kind: "permission_respond", ...payload, ...answerer(principal) }))
      }),
    questionReply: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const answer = yield* checkQuestionReply(store, principal.orgId, params.id, { kind: "question_reply", ...payload, ...answerer(principal) })
        return accepted(yield* store.answer(principal.orgId, params.id, answer))
      }),
    questionReject: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return accepted(yield* store.answer(principal.orgId, params.id, { kind: "question_reject", ...payload, ...answerer(principal) }))
      })
  })
}))
