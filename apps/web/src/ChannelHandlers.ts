import { Api, Conflict, CurrentPrincipal, NotFound, Unavailable } from "@cowork/domain"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"

const notYet = Effect.fail(new NotFound({ message: "channel binding not found" }))

/** `/api/channels/...` (issue 11): the first cut declares the routes; the channel store backs them next. */
export const layer = HttpApiBuilder.group(Api, "channels", Effect.fn(function*(handlers) {
  return handlers.handleAll({
    listBindings: () => Effect.succeed({ bindings: [] }),
    createBinding: () => Effect.fail(new Conflict({ message: "channel bindings are not stored yet" })),
    getBinding: () => notYet,
    updateBinding: () => notYet,
    deleteBinding: () => notYet,
    reportBindingStatus: () => notYet,
    listRoutes: () => notYet,
    bindSession: () => notYet,
    unbindSession: () => notYet,
    prompt: () => notYet,
    answer: () => notYet,
    claimProviderEvent: () => notYet,
    completeProviderEvent: () => notYet,
    listIdentities: () => Effect.succeed({ identities: [] }),
    createIdentity: () => notYet,
    deleteIdentity: () => notYet,
    resolveIdentity: () => notYet,
    listDeliveries: () => Effect.succeed({ deliveries: [], nextCursor: null, totalEstimate: 0 }),
    deliveryStream: () => Effect.fail(new Unavailable({ message: "the delivery stream is not served yet", retryAfterSeconds: 5 })),
    claimDeliveries: () => Effect.succeed({ deliveries: [] }),
    getDelivery: () => notYet,
    ackDelivery: () => notYet,
    renewDelivery: () => notYet,
    retryDelivery: () => notYet,
    deadLetterDelivery: () => notYet,
    listCursors: () => Effect.succeed({ cursors: [] }),
    putCursor: () => notYet,
    gatewayGrant: () =>
      Effect.map(CurrentPrincipal, (principal) => ({
        tokenId: principal.tokenId,
        scope: principal.scopes.includes("admin") ? "admin" as const : "gateway" as const,
        channelBindingIds: [],
        listAllowed: true,
        retryAllowed: true,
        deadLetterAllowed: true
      })),
    listGatewayTokens: () => Effect.succeed({ tokens: [] }),
    createGatewayToken: () => notYet
  })
}))
