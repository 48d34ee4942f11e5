import { Metrics } from "@cowork/observability"
import { ChangeFeed, MemoryDatabase, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { TokenVerifier } from "../src/TokenVerifier.ts"

/** The verification cache alone, over the memory store: bounded, least recently used evicted, TTL-limited, and emptied of a revoked token. */
const verifierLayer = TokenVerifier.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Tokens.layerMemory, ChangeFeed.layerMemory)),
  Layer.provideMerge(MemoryDatabase.layer),
  Layer.provide(Metrics.layerTest("web")),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
    OPEN_COWORK_CLOUD_TOKEN_CACHE_TTL_MS: 10_000,
    OPEN_COWORK_CLOUD_TOKEN_CACHE_MAX: 2
  })))
)

/** Revokes a token's row behind every cache's back (no announcement): only a cache miss notices. */
const revokeSilently = (tokenId: string) =>
  Effect.map(Effect.service(MemoryDatabase), (db) => {
    db.tokens.get(tokenId)!.revokedAt = 0
  })

it.layer(verifierLayer)("TokenVerifier", (it) => {
  it.effect("keeps at most OPEN_COWORK_CLOUD_TOKEN_CACHE_MAX tokens, evicting the least recently used; entries live until the TTL", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const verifier = yield* TokenVerifier
      const { orgId } = yield* tokens.createOrg("cache")
      const issue = Effect.orDie(tokens.issue({ orgId, name: "t", scopes: ["web"] }))
      const [a, b, c] = [yield* issue, yield* issue, yield* issue]
      yield* verifier.authenticate(a.token)
      yield* verifier.authenticate(b.token)
      yield* verifier.authenticate(a.token) // a is now the most recently used
      yield* verifier.authenticate(c.token) // evicts b
      assert.strictEqual(yield* verifier.size, 2)

      yield* revokeSilently(a.tokenId)
      yield* revokeSilently(b.tokenId)
      assert.strictEqual((yield* verifier.authenticate(a.token)).tokenId, a.tokenId, "a is served from the cache")
      assert.strictEqual((yield* Effect.flip(verifier.authenticate(b.token))).reason, "revoked_token", "b was evicted and read again")
      yield* TestClock.adjust(10_001)
      assert.strictEqual((yield* Effect.flip(verifier.authenticate(a.token))).reason, "revoked_token", "past the TTL a is read again")
    }))

  it.effect("a wrong secret for a cached token id is refused; a revoked token leaves the cache when announced", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const verifier = yield* TokenVerifier
      const { orgId } = yield* tokens.createOrg("revoke")
      const issued = yield* Effect.orDie(tokens.issue({ orgId, name: "t", scopes: ["web"] }))
      yield* verifier.authenticate(issued.token)
      const forged = Redacted.make(`occ_${issued.tokenId}_${"A".repeat(43)}`)
      assert.strictEqual((yield* Effect.flip(verifier.authenticate(forged)))._tag, "Unauthorized")

      yield* Effect.orDie(tokens.revoke(issued.tokenId, { orgId }))
      // The announcement reaches the cache's subscriber fiber; poll with a bound, never a sleep.
      let refused = false
      for (let attempt = 0; attempt < 1_000 && !refused; attempt++) {
        refused = (yield* Effect.exit(verifier.authenticate(issued.token)))._tag === "Failure"
        if (!refused) yield* Effect.yieldNow
      }
      assert.isTrue(refused, "the revoked token was still served from the cache")
    }))
})
