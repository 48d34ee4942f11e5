import type { Principal, Unauthorized } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ChangeFeed, REVOCATIONS_CHANNEL, sha256Hex, Tokens } from "@cowork/services"
import { Clock, Config, Context, Effect, Layer, Redacted, Stream } from "effect"

interface Entry {
  readonly principal: Principal
  /** Epoch ms: the cache's TTL or the token's own expiry, whichever comes first. */
  readonly validUntil: number
}

/**
 * API-token verification with a bounded cache per web process (sha256 of the presented token → principal), so an
 * authenticated request does not read the database. Revocation is pushed: a token revoked (or its org offboarded) on
 * any process is announced by Postgres `NOTIFY` (`ChangeFeed.revocations`) and dropped here at once; a TTL
 * (`OPEN_COWORK_CLOUD_TOKEN_CACHE_TTL_MS`, default 30 s) bounds the damage of a lost notification, and the cache is
 * emptied whenever the listening connection comes back (notifications were lost meanwhile) and bypassed while it is
 * down. Only accepted tokens are cached: a refused one is looked up every time (the authentication back-off limits
 * that). At most `OPEN_COWORK_CLOUD_TOKEN_CACHE_MAX` entries (default 10,000), least recently used evicted first.
 */
export class TokenVerifier extends Context.Service<TokenVerifier, {
  readonly authenticate: (raw: Redacted.Redacted<string>) => Effect.Effect<Principal, Unauthorized>
  /** How many verified tokens are cached now. */
  readonly size: Effect.Effect<number>
  /** `tokenId` was just revoked through this process: it is refused here at once, before the notification returns. */
  readonly forget: (tokenId: string) => Effect.Effect<void>
  /** `orgId` was just offboarded through this process: its tokens are refused here at once. */
  readonly forgetOrg: (orgId: string) => Effect.Effect<void>
}>()("cowork/web/TokenVerifier") {
  static readonly layer = Layer.effect(
    TokenVerifier,
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const feed = yield* ChangeFeed
      const metrics = yield* Metrics
      const ttlMs = yield* Config.Int("OPEN_COWORK_CLOUD_TOKEN_CACHE_TTL_MS").pipe(Config.withDefault(30_000))
      const maxEntries = Math.max(1, yield* Config.Int("OPEN_COWORK_CLOUD_TOKEN_CACHE_MAX").pipe(Config.withDefault(10_000)))
      // Map order is the recency order: a hit moves its entry to the end, eviction takes from the front.
      const cache = new Map<string, Entry>()
      // Bumped by every revocation: a lookup that raced one does not cache what it read before it.
      let generation = 0

      const drop = (matches: (principal: Principal) => boolean) => {
        generation++
        for (const [key, entry] of cache) if (matches(entry.principal)) cache.delete(key)
      }
      const clear = () => {
        generation++
        cache.clear()
      }

      yield* Effect.forkScoped(Stream.runForEach(yield* feed.revocations, (revocation) =>
        Effect.sync(() => {
          if (revocation.kind === "token") drop((principal) => principal.tokenId === revocation.id)
          else if (revocation.kind === "org") drop((principal) => principal.kind === "org" && principal.orgId === revocation.id)
        })))
      yield* Effect.forkScoped(Stream.runForEach(yield* feed.resyncs, (resync) =>
        Effect.sync(() => {
          if (resync.channel === REVOCATIONS_CHANNEL) clear()
        })))

      /** While the revocation listener is down a revocation could go unseen: neither serve nor fill the cache. */
      const listening = Effect.map(feed.listeners, (listeners) => {
        // The memory feed lists no channel and loses nothing.
        if (listeners.length === 0) return true
        const connected = listeners.some((listener) => listener.channel === REVOCATIONS_CHANNEL && listener.connected)
        if (!connected) clear()
        return connected
      })

      const authenticate = Effect.fnUntraced(function*(raw: Redacted.Redacted<string>) {
        const now = yield* Clock.currentTimeMillis
        if (!(yield* listening)) {
          yield* metrics.inc("open_cowork_cloud_token_cache_lookups_total", { result: "bypass" })
          return yield* tokens.authenticate(raw)
        }
        const key = sha256Hex(Redacted.value(raw))
        const cached = cache.get(key)
        if (cached !== undefined) {
          cache.delete(key)
          if (cached.validUntil > now) {
            cache.set(key, cached)
            yield* metrics.inc("open_cowork_cloud_token_cache_lookups_total", { result: "hit" })
            return cached.principal
          }
        }
        const before = generation
        const verified = yield* tokens.verify(raw)
        yield* metrics.inc("open_cowork_cloud_token_cache_lookups_total", { result: "miss" })
        const expiresAt = verified.expiresAt === null ? Number.POSITIVE_INFINITY : Date.parse(verified.expiresAt)
        if (generation === before) {
          cache.set(key, { principal: verified.principal, validUntil: Math.min(now + ttlMs, expiresAt) })
          while (cache.size > maxEntries) cache.delete(cache.keys().next().value!)
        }
        return verified.principal
      })

      return TokenVerifier.of({
        authenticate,
        size: Effect.sync(() => cache.size),
        forget: (tokenId) => Effect.sync(() => drop((principal) => principal.tokenId === tokenId)),
        forgetOrg: (orgId) => Effect.sync(() => drop((principal) => principal.kind === "org" && principal.orgId === orgId))
      })
    })
  )
}
