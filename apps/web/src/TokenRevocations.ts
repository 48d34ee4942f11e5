import type { OrgPrincipal } from "@cowork/domain"
import { ChangeFeed, Identity, Tokens } from "@cowork/services"
import { Config, Context, Effect, Layer, Queue, type Scope, Stream } from "effect"

interface Watched {
  readonly orgId: string
  /** What the credential is: its revocation is checked in the tokens table or the browser sessions table. */
  readonly kind: "token" | "browser_session"
  ended: boolean
  /** Called once when the credential ends (each open stream's way to end itself; no fiber per stream). */
  readonly listeners: Set<() => void>
}

/** Shortest time between two checks started by new watches or reconnects (a burst of new streams costs one read). */
const CHECK_SPACING_MS = 1_000

/**
 * Ends the event streams of a credential once it is revoked or expires: an API token, or a browser session (logout,
 * logout everywhere, an admin ending it, member removal, the token it was signed in with revoked). Revocations are
 * pushed by Postgres `NOTIFY` (`ChangeFeed.revocations`, from whichever process revoked), so they end at once on
 * every web process; an org's offboarding ends all of its streams. The watched credentials are read (ONE batched
 * read per kind) when a credential is first watched (it may have been revoked before this process heard of it, and
 * its expiry becomes known), when the listening connection is re-established (notifications may have been lost), at
 * the earliest expiry among them, and at the latest every `OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS` (default 300000, a
 * backstop). Idle with open streams, that is one read per backstop.
 */
export class TokenRevocations extends Context.Service<TokenRevocations, {
  /**
   * Calls `listener` (synchronously, once) when the principal's credential ends — at once if it already did; the
   * registration ends with the caller's scope.
   */
  readonly onEnd: (principal: OrgPrincipal, listener: () => void) => Effect.Effect<void, never, Scope.Scope>
  /** `tokenId` was just revoked through this process: its streams end now. */
  readonly revoked: (tokenId: string) => Effect.Effect<void>
}>()("cowork/web/TokenRevocations") {
  static readonly layer = Layer.effect(
    TokenRevocations,
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const identity = yield* Identity
      const feed = yield* ChangeFeed
      const backstopMs = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS").pipe(Config.withDefault(300_000))
      const watched = new Map<string, Watched>()
      const wake = yield* Queue.sliding<void>(1)
      const request = Queue.offer(wake, undefined).pipe(Effect.asVoid)

      const end = (id: string) => {
        const entry = watched.get(id)
        if (entry === undefined || entry.ended) return
        entry.ended = true
        for (const listener of entry.listeners) listener()
      }

      yield* Effect.forkScoped(Stream.runForEach(yield* feed.revocations, (revocation) =>
        Effect.sync(() => {
          if (revocation.kind !== "org") return end(revocation.id)
          for (const [id, entry] of watched) if (entry.orgId === revocation.id) end(id)
        })))
      // A re-established listener may have missed revocations.
      yield* Effect.forkScoped(Stream.runForEach(yield* feed.resyncs, () => request))

      /** Ends what ended; returns how long until the first watched credential expires (null: none does). */
      const check = Effect.gen(function*() {
        if (watched.size === 0) return null
        const ids = (kind: Watched["kind"]) => [...watched].filter(([, entry]) => entry.kind === kind).map(([id]) => id)
        const checks = [yield* tokens.invalidAmong(ids("token")), yield* identity.endedAmong(ids("browser_session"))]
        let next: number | null = null
        for (const result of checks) {
          for (const id of result.ended) end(id)
          if (result.nextExpiryInMs !== null) next = Math.min(next ?? result.nextExpiryInMs, result.nextExpiryInMs)
        }
        return next
      }).pipe(
        // A failed check (database down) is retried after the spacing; streams keep running meanwhile.
        Effect.catchCause((cause) => Effect.as(Effect.logWarning("credential revocation check failed", cause), CHECK_SPACING_MS))
      )
      yield* Effect.forkScoped(Effect.gen(function*() {
        while (true) {
          const next = yield* check
          // A few ms past the expiry, so the read finds it expired by the database clock.
          const sleep = next === null ? backstopMs : Math.min(Math.max(0, Math.ceil(next)) + 5, backstopMs)
          const woken = yield* Effect.raceFirst(Effect.as(Queue.take(wake), true), Effect.as(Effect.sleep(sleep), false))
          if (woken) yield* Effect.sleep(CHECK_SPACING_MS)
        }
      }))

      const hold = (id: string, orgId: string, kind: Watched["kind"], listener: () => void) =>
        Effect.acquireRelease(
          Effect.gen(function*() {
            const known = watched.get(id)
            const entry = known ?? { orgId, kind, ended: false, listeners: new Set() }
            watched.set(id, entry)
            if (entry.ended) listener()
            else entry.listeners.add(listener)
            // A credential new to this process: read it (revoked meanwhile? when does it expire?).
            if (known === undefined) yield* request
            return entry
          }),
          (entry) =>
            Effect.sync(() => {
              entry.listeners.delete(listener)
              if (entry.listeners.size === 0 && watched.get(id) === entry) watched.delete(id)
            })
        )

      return TokenRevocations.of({
        onEnd: (principal, listener) =>
          Effect.gen(function*() {
            // Each registration gets its own once-only wrapper (a token-login session ends with either credential).
            let called = false
            const once = () => {
              if (called) return
              called = true
              listener()
            }
            const session = principal.browserSession
            if (session === undefined) return yield* hold(principal.tokenId, principal.orgId, "token", once)
            yield* hold(session.sessionId, principal.orgId, "browser_session", once)
            // A token-login session also ends with its token.
            if (session.sourceTokenId != null) yield* hold(session.sourceTokenId, principal.orgId, "token", once)
          }).pipe(Effect.asVoid),
        revoked: (tokenId) => Effect.sync(() => end(tokenId))
      })
    })
  )
}
