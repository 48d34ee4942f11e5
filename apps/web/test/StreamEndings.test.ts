import type { OrgPrincipal } from "@cowork/domain"
import { ChangeFeed, Identity, type Revocation, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, PubSub, Scope, Stream } from "effect"
import { TokenRevocations } from "../src/TokenRevocations.ts"
import { WebLifecycle } from "../src/WebLifecycle.ts"
import { testScope } from "../../../test/support/TestScope.ts"
import { silentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

/**
 * The two reasons an open SSE stream ends — its credential ends, the process drains — are plain callbacks (an open
 * stream holds no watcher fiber): each registration is called once, at once when the reason already holds, and no
 * more after its scope closed.
 */
const setup = Effect.gen(function*() {
  const revocations = yield* PubSub.unbounded<Revocation>()
  /** Credentials the database reports as ended when the watcher checks them. */
  const endedInDb = new Set<string>()
  const check = (ids: ReadonlyArray<string>) => Effect.succeed({ ended: ids.filter((id) => endedInDb.has(id)), nextExpiryInMs: null })
  const feed = silentChangeFeed({
    revocations: Effect.map(PubSub.subscribe(revocations), Stream.fromSubscription)
  })
  const context = yield* Layer.build(Layer.mergeAll(TokenRevocations.layer, WebLifecycle.layerRole("web")).pipe(
    Layer.provide(Layer.succeed(ChangeFeed, feed)),
    Layer.provide(Layer.succeed(Tokens, { invalidAmong: check } as unknown as Tokens["Service"])),
    Layer.provide(Layer.succeed(Identity, { endedAmong: check } as unknown as Identity["Service"])),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS: "600000" })))
  ))
  return {
    revoke: (revocation: Revocation) => PubSub.publish(revocations, revocation),
    endedInDb,
    tokens: context.mapUnsafe.get(TokenRevocations.key) as TokenRevocations["Service"],
    lifecycle: context.mapUnsafe.get(WebLifecycle.key) as WebLifecycle["Service"]
  }
})

const tokenPrincipal = (tokenId: string): OrgPrincipal => ({ kind: "org", orgId: "org1", tokenId, scopes: [] })
const browserPrincipal = (sessionId: string, sourceTokenId: string | null): OrgPrincipal => ({
  kind: "org",
  orgId: "org1",
  tokenId: sessionId,
  scopes: [],
  browserSession: { sessionId, accountId: "acc", email: null, role: "member", csrfToken: "x", sourceTokenId }
})

/** Polls `done` (yielding to the watcher's fibers) until it holds, or fails after `ms`. */
const eventually = (done: () => boolean, what: string, ms = 5_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!done()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("1 millis")
    }
  })

it.live("a credential's end calls each stream's callback once; a token-login session ends with its token too", () =>
  Effect.scoped(Effect.gen(function*() {
    const { revoke, tokens } = yield* setup
    const calls = { a: 0, b: 0, browser: 0, other: 0 }
    yield* tokens.onEnd(tokenPrincipal("tok_a"), () => calls.a++)
    yield* tokens.onEnd(tokenPrincipal("tok_a"), () => calls.b++)
    yield* tokens.onEnd(browserPrincipal("bs_1", "tok_a"), () => calls.browser++)
    yield* tokens.onEnd(tokenPrincipal("tok_other"), () => calls.other++)

    yield* revoke({ kind: "token", id: "tok_a" })
    yield* eventually(() => calls.a === 1 && calls.b === 1 && calls.browser === 1, "tok_a's streams end")
    // The browser session's own end later does not call its stream again; another token is untouched.
    yield* revoke({ kind: "browser_session", id: "bs_1" })
    yield* revoke({ kind: "token", id: "tok_a" })
    yield* revoke({ kind: "org", id: "org2" })
    for (let i = 0; i < 50; i++) yield* Effect.yieldNow
    assert.deepStrictEqual(calls, { a: 1, b: 1, browser: 1, other: 0 })
    // An org's offboarding ends every stream of the org.
    yield* revoke({ kind: "org", id: "org1" })
    yield* eventually(() => calls.other === 1, "org offboarding")
  })))

it.live("a credential already ended in the database ends a new stream at its first check; a closed registration is not called", () =>
  Effect.scoped(Effect.gen(function*() {
    const { endedInDb, revoke, tokens } = yield* setup
    endedInDb.add("tok_gone")
    let gone = 0
    yield* tokens.onEnd(tokenPrincipal("tok_gone"), () => gone++)
    yield* eventually(() => gone === 1, "the first check ends it")

    let closed = 0
    const scope = yield* testScope
    yield* tokens.onEnd(tokenPrincipal("tok_b"), () => closed++).pipe(Scope.provide(scope))
    yield* Scope.close(scope, Exit.void)
    let open = 0
    yield* tokens.onEnd(tokenPrincipal("tok_b"), () => open++)
    yield* revoke({ kind: "token", id: "tok_b" })
    yield* eventually(() => open === 1, "the open registration")
    assert.strictEqual(closed, 0, "the closed registration was removed")
    // Registered after the end: called at once.
    let late = 0
    yield* tokens.onEnd(tokenPrincipal("tok_b"), () => late++)
    assert.strictEqual(late, 1)
  })))

it.effect("draining calls every registered stream once, and a stream registered while draining at once", () =>
  Effect.scoped(Effect.gen(function*() {
    const { lifecycle } = yield* setup
    let first = 0
    let removed = 0
    yield* lifecycle.onDrain(() => first++)
    const scope = yield* testScope
    yield* lifecycle.onDrain(() => removed++).pipe(Scope.provide(scope))
    yield* Scope.close(scope, Exit.void)
    assert.isFalse(yield* lifecycle.isDraining)
    yield* lifecycle.beginDrain
    yield* lifecycle.beginDrain
    assert.isTrue(yield* lifecycle.isDraining)
    assert.strictEqual(first, 1)
    assert.strictEqual(removed, 0)
    let late = 0
    yield* lifecycle.onDrain(() => late++)
    assert.strictEqual(late, 1)
  })))
