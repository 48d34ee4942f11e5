import { Tokens } from "@cowork/services"
import { Console, Effect, Layer, Redacted } from "effect"

const rule = "=".repeat(76)

/**
 * On a fresh database, creates the first org and its owner token (scopes admin, operator, web) and prints the
 * token once to stdout — it is never stored, only its hash is. Later starts only log that the org exists.
 */
export const layer = Layer.effectDiscard(Effect.gen(function*() {
  const tokens = yield* Tokens
  const { orgId, owner } = yield* tokens.bootstrap("default")
  if (owner === undefined) {
    yield* Effect.logInfo("bootstrap: org exists, owner token was shown on first start").pipe(Effect.annotateLogs({ orgId }))
    return
  }
  yield* Console.log([
    rule,
    "  Cowork Cloud owner token (shown once, store it now):",
    `  ${Redacted.value(owner.token)}`,
    `  org ${orgId}, scopes ${owner.scopes.join(",")}`,
    rule
  ].join("\n"))
  yield* Effect.logInfo("bootstrap: created org and owner token").pipe(
    Effect.annotateLogs({ orgId, tokenId: owner.tokenId })
  )
}))
