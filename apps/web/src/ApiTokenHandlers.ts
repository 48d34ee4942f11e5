import { Api, CurrentPrincipal, Forbidden } from "@cowork/domain"
import { Tokens } from "@cowork/services"
import { Effect, Redacted } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { actorOf, recordAudit } from "./AuditHandlers.ts"
import { TokenRevocations } from "./TokenRevocations.ts"
import { TokenVerifier } from "./TokenVerifier.ts"

/** `/api/api-tokens`: the caller's org's tokens. Another org's token is a 404; a new token never outranks its creator. */
export const layer = HttpApiBuilder.group(Api, "apiTokens", Effect.fn(function*(handlers) {
  const tokens = yield* Tokens
  const revocations = yield* TokenRevocations
  const verifier = yield* TokenVerifier

  return handlers.handleAll({
    list: () =>
      Effect.gen(function*() {
        return { tokens: yield* tokens.list((yield* CurrentPrincipal).orgId) }
      }),
    create: ({ payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const beyond = payload.scopes.filter((scope) => !principal.scopes.includes(scope))
        if (beyond.length > 0) {
          return yield* new Forbidden({
            message: `a token can grant only scopes its creator holds (not ${beyond.join(", ")})`,
            requiredScopes: beyond
          })
        }
        const issued = yield* tokens.issue({
          orgId: principal.orgId,
          name: payload.name,
          scopes: [...new Set(payload.scopes)],
          expiresInMs: payload.expiresInSeconds === undefined ? undefined : payload.expiresInSeconds * 1_000
        }).pipe(Effect.orDie)
        yield* recordAudit({
          orgId: principal.orgId,
          actor: actorOf(principal),
          action: "token.created",
          target: `token:${issued.tokenId}`,
          details: { name: issued.view.name, scopes: [...issued.view.scopes], expiresAt: issued.view.expiresAt }
        })
        return { token: issued.view, secret: Redacted.value(issued.token) }
      }),
    revoke: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const token = yield* tokens.revoke(params.id, { orgId: principal.orgId })
        yield* verifier.forget(token.id)
        yield* revocations.revoked(token.id)
        yield* recordAudit({
          orgId: principal.orgId,
          actor: actorOf(principal),
          action: "token.revoked",
          target: `token:${token.id}`,
          details: { name: token.name }
        })
        return { token }
      })
  })
}))
