import type { OrgPrincipal } from "@cowork/domain"
import { ChangeFeed, Identity, Tokens } from "@cowork/services"
import { Config, Context, Deferred, Effect, Layer, Schedule, type Scope, Stream } from "effect"

interface Watched {
  holders: number
  readonly orgId: string
  /** What the credential is: its revocation is checked in the tokens table or the browser sessions table. */
  readonly kind: "token" | "browser_session"
  readonly ended: Deferred.Deferred<void>
}

/**
 * Ends the event streams of a credential once it is revoked or expires: an API token, or a browser session (logout,
 * logout everywhere, an admin ending it, member removal, the token it was signed in with revoked). Revocations are
 * pushed by Postgres `NOTIFY` (`ChangeFeed.revocations`, from whichever process revoked), so they end at once on
 * every web process; an org's offboarding ends all of its streams. As a backstop for a lost notification and for
 * expiry, each process checks its watched credentials in ONE batched read per kind every
 * `OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS` (default 2000).
 */
export class TokenRevocations extends Context.Service<TokenRevocations, {
  /** Completes when the principal's credential ends; the watch ends with the caller's scope. */
  readonly watch: (principal: OrgPrincipal) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** `tokenId` was just revoked through this process: its streams end now. */
  readonly revoked: (tokenId: string) => Effect.Effect<void>
}>()("cowork/web/TokenRevocations") {
  static readonly layer = Layer.effect(
    TokenRevocations,
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const identity = yield* Identity
      const feed = yield* ChangeFeed
      const intervalMs = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS").pipe(Config.withDefault(2_000))
      const watched = new Map<string, Watched>()

      const end = (id: string) => {
        const entry = watched.get(id)
        if (entry !== undefined) Deferred.doneUnsafe(entry.ended, Effect.void)
      }

      yield* Effect.forkScoped(Stream.runForEach(yield* feed.revocations, (revocation) =>
        Effect.sync(() => {
          if (revocation.kind !== "org") return end(revocation.id)
          for (const [id, entry] of watched) if (entry.orgId === revocation.id) end(id)
        })))

      const check = Effect.gen(function*() {
        if (watched.size === 0) return
        const ids = (kind: Watched["kind"]) => [...watched].filter(([, entry]) => entry.kind === kind).map(([id]) => id)
        for (const id of yield* tokens.invalidAmong(ids("token"))) end(id)
        for (const id of yield* identity.endedAmong(ids("browser_session"))) end(id)
      }).pipe(
        // A failed check (database down) is retried on the next tick; streams keep running meanwhile.
        Effect.catchCause((cause) => Effect.logWarning("credential revocation check failed", cause))
      )
      yield* Effect.forkScoped(Effect.repeat(check, Schedule.spaced(`${intervalMs} millis`)))

      const hold = (id: string, orgId: string, kind: Watched["kind"]) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const entry = watched.get(id) ?? { holders: 0, orgId, kind, ended: Deferred.makeUnsafe<void>() }
            entry.holders += 1
            watched.set(id, entry)
            return entry
          }),
          (entry) =>
            Effect.sync(() => {
              entry.holders -= 1
              if (entry.holders === 0 && watched.get(id) === entry) watched.delete(id)
            })
        )

      return TokenRevocations.of({
        watch: (principal) =>
          Effect.gen(function*() {
            const session = principal.browserSession
            if (session === undefined) return Deferred.await((yield* hold(principal.tokenId, principal.orgId, "token")).ended)
            const own = yield* hold(session.sessionId, principal.orgId, "browser_session")
            // A token-login session also ends with its token.
            const source = session.sourceTokenId == null ? undefined : yield* hold(session.sourceTokenId, principal.orgId, "token")
            return source === undefined
              ? Deferred.await(own.ended)
              : Effect.raceFirst(Deferred.await(own.ended), Deferred.await(source.ended))
          }),
        revoked: (tokenId) => Effect.sync(() => end(tokenId))
      })
    })
  )
}
