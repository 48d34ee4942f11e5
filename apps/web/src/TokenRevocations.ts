import { Tokens } from "@cowork/services"
import { Config, Context, Deferred, Effect, Layer, Schedule, type Scope } from "effect"

/**
 * Ends the event streams of a token once it is revoked or expires. Each web process checks the tokens its open
 * streams were opened with in ONE batched read every `OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS` (default 2000), so a
 * revocation made on any process (API, CLI) or an expiry ends them within that interval; a revocation made through
 * this process ends them at once.
 */
export class TokenRevocations extends Context.Service<TokenRevocations, {
  /** Completes when `tokenId` is revoked or expired; the watch ends with the caller's scope. */
  readonly watch: (tokenId: string) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** `tokenId` was just revoked through this process: its streams end now. */
  readonly revoked: (tokenId: string) => Effect.Effect<void>
}>()("cowork/web/TokenRevocations") {
  static readonly layer = Layer.effect(
    TokenRevocations,
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const intervalMs = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS").pipe(Config.withDefault(2_000))
      const watched = new Map<string, { holders: number; readonly ended: Deferred.Deferred<void> }>()

      const end = (tokenId: string) => {
        const entry = watched.get(tokenId)
        if (entry !== undefined) Deferred.doneUnsafe(entry.ended, Effect.void)
      }

      const check = Effect.gen(function*() {
        if (watched.size === 0) return
        for (const tokenId of yield* tokens.invalidAmong([...watched.keys()])) end(tokenId)
      }).pipe(
        // A failed check (database down) is retried on the next tick; streams keep running meanwhile.
        Effect.catchCause((cause) => Effect.logWarning("token revocation check failed", cause))
      )
      yield* Effect.forkScoped(Effect.repeat(check, Schedule.spaced(`${intervalMs} millis`)))

      return TokenRevocations.of({
        watch: (tokenId) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              const entry = watched.get(tokenId) ?? { holders: 0, ended: Deferred.makeUnsafe<void>() }
              entry.holders += 1
              watched.set(tokenId, entry)
              return entry
            }),
            (entry) =>
              Effect.sync(() => {
                entry.holders -= 1
                if (entry.holders === 0 && watched.get(tokenId) === entry) watched.delete(tokenId)
              })
          ).pipe(Effect.map((entry) => Deferred.await(entry.ended))),
        revoked: (tokenId) => Effect.sync(() => end(tokenId))
      })
    })
  )
}
