import { Api, CurrentPrincipal, type OrgPrincipal } from "@cowork/domain"
import { Threads } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"

const DEFAULT_THREAD_PAGE = 50

/** Who the caller is for `createdBy` and the `mine` filter: the browser account, else the API token. */
export const viewerOf = (principal: OrgPrincipal): string =>
  principal.browserSession === undefined ? `token:${principal.tokenId}` : `account:${principal.browserSession.accountId}`

export const layer = HttpApiBuilder.group(Api, "threads", Effect.fn(function*(handlers) {
  const threads = yield* Threads
  return handlers.handleAll({
    list: ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* threads.list(principal.orgId, viewerOf(principal), { ...query, limit: query.limit ?? DEFAULT_THREAD_PAGE })
      }),
    tags: () =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { tags: yield* threads.tags(principal.orgId) }
      }),
    smartFilters: () =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { filters: yield* threads.smartFilters(principal.orgId, viewerOf(principal)) }
      }),
    update: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { thread: yield* threads.update(principal.orgId, params.id, payload) }
      })
  })
}))
