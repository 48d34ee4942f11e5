import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { connect } from "../../../test/support/SseClient.ts"
import { Browser } from "./support/Browser.ts"
import { baseUrl, orgWithToken, serverLayer, tokenFor } from "./support/WebTestServer.ts"

/**
 * Two web processes on one database. The cache TTL and the streams' backstop check are set far beyond the test's
 * deadlines, so only the pushed revocation (Postgres NOTIFY) can make the other process refuse the token or end a
 * stream in time.
 */
const longCaches = ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
  OPEN_COWORK_CLOUD_TOKEN_CACHE_TTL_MS: 600_000,
  OPEN_COWORK_CLOUD_SSE_TOKEN_CHECK_MS: 600_000
}))
const replica = serverLayer.pipe(Layer.provide(longCaches))
const twoReplicas = replica.pipe(Layer.provideMerge(TestDatabase.layer()))

const status = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(() => fetch(url, { headers }).then(async (response) => {
    await response.arrayBuffer()
    return response.status
  }))

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** Polls until `url` answers `expected`, within a deadline (the other process acts on a notification). */
const answersWithin = (url: string, headers: Record<string, string>, expected: number, withinMs: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + withinMs
    let last = 0
    while (Date.now() < deadline) {
      last = yield* status(url, headers)
      if (last === expected) return
      yield* Effect.sleep("20 millis")
    }
    assert.fail(`${url} still answered ${last} after ${withinMs} ms (expected ${expected})`)
  })

/** Both processes listen for revocations (`/readyz` checks every LISTEN connection). */
const ready = (url: string) => answersWithin(`${url}/readyz`, {}, 200, 15_000)

const endsWithin = (stream: { readonly ended: Effect.Effect<void> }, withinMs: number, what: string) =>
  stream.ended.pipe(
    Effect.timeoutOrElse({ duration: withinMs, orElse: () => Effect.die(new Error(`${what}: the stream was still open after ${withinMs} ms`)) })
  )

const tokenIdOf = (token: string) => token.split("_")[1]!

it.layer(twoReplicas, { timeout: 120_000 })("API-token verification cache, revocation pushed across web processes", (it) => {
  it.effect("a token revoked on one process is refused at once by the other, whose cache served it without reading the row", () =>
    TestClock.withLive(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const first = yield* baseUrl
      const { orgId, token: admin } = yield* orgWithToken(["admin", "web"])
      const user = yield* tokenFor(orgId, ["web"])
      yield* Effect.gen(function*() {
        const second = yield* baseUrl
        assert.notStrictEqual(first, second)
        yield* ready(first)
        yield* ready(second)
        assert.strictEqual(yield* status(`${first}/api/sessions`, bearer(user)), 200)
        assert.strictEqual(yield* status(`${second}/api/sessions`, bearer(user)), 200)

        // Revoked behind the caches' back (no notification): both processes still accept it from their cache —
        // proof that an authenticated request does not read the token row.
        yield* sql.unsafe(`UPDATE cloud_api_tokens SET revoked_at = now() WHERE id = $1`, [tokenIdOf(user)]).pipe(Effect.orDie)
        assert.strictEqual(yield* status(`${second}/api/sessions`, bearer(user)), 200)
        assert.strictEqual(yield* status(`${first}/api/sessions`, bearer(user)), 200)
        yield* sql.unsafe(`UPDATE cloud_api_tokens SET revoked_at = NULL WHERE id = $1`, [tokenIdOf(user)]).pipe(Effect.orDie)

        // Revoked through the first process's API: the second refuses it within a second or two.
        const revoked = yield* Effect.promise(() =>
          fetch(`${first}/api/api-tokens/${tokenIdOf(user)}`, { method: "DELETE", headers: bearer(admin) }).then((r) => r.status))
        assert.strictEqual(revoked, 200)
        assert.strictEqual(yield* status(`${first}/api/sessions`, bearer(user)), 401)
        yield* answersWithin(`${second}/api/sessions`, bearer(user), 401, 3_000)
        assert.strictEqual(yield* status(`${second}/api/sessions`, bearer(admin)), 200, "other tokens stay cached and valid")
      }).pipe(Effect.provide(Layer.fresh(replica)))
    })))

  it.effect("a token-login browser session ends with its token on every process, and so do its open streams; logout ends a session's streams elsewhere", () =>
    TestClock.withLive(Effect.gen(function*() {
      const first = yield* baseUrl
      const { orgId, token: admin } = yield* orgWithToken(["admin", "web"])
      const signer = yield* tokenFor(orgId, ["admin", "web"])
      yield* Effect.gen(function*() {
        const second = yield* baseUrl
        yield* ready(first)
        yield* ready(second)
        const signIn = Effect.fnUntraced(function*(token: string) {
          const browser = new Browser()
          const response = yield* Effect.promise(() =>
            browser.request("POST", `${first}/auth/token-login`, { json: { token }, headers: { origin: first } }))
          assert.strictEqual(response.status, 200)
          const cookie = browser.cookie(new URL(first).host, "cowork_session")!.value
          return { cookie: `cowork_session=${cookie}`, csrfToken: response.json.csrfToken as string }
        })
        const viaSigner = yield* signIn(signer)
        const viaAdmin = yield* signIn(admin)
        // Streams on the second process, opened with the browser sessions' cookies.
        const signerStream = yield* connect(`${second}/api/events`, { cookie: viaSigner.cookie })
        const adminStream = yield* connect(`${second}/api/events`, { cookie: viaAdmin.cookie })
        assert.strictEqual(signerStream.status, 200)
        assert.strictEqual(adminStream.status, 200)

        const revoked = yield* Effect.promise(() =>
          fetch(`${first}/api/api-tokens/${tokenIdOf(signer)}`, { method: "DELETE", headers: bearer(admin) }).then((r) => r.status))
        assert.strictEqual(revoked, 200)
        yield* endsWithin(signerStream, 3_000, "the token-login session's stream after its token was revoked")
        assert.strictEqual(yield* status(`${second}/api/workspace`, { cookie: viaSigner.cookie }), 401)
        assert.strictEqual(yield* status(`${first}/api/workspace`, { cookie: viaSigner.cookie }), 401)
        assert.strictEqual(yield* status(`${second}/api/workspace`, { cookie: viaAdmin.cookie }), 200, "another session is untouched")

        // Logging out on the first process ends that browser session's stream on the second.
        const loggedOut = yield* Effect.promise(() =>
          fetch(`${first}/auth/logout`, {
            method: "POST",
            headers: { cookie: viaAdmin.cookie, origin: first, "x-csrf-token": viaAdmin.csrfToken }
          }).then((r) => r.status))
        assert.strictEqual(loggedOut, 204)
        yield* endsWithin(adminStream, 3_000, "the logged-out session's stream")
        assert.strictEqual(yield* status(`${second}/api/workspace`, { cookie: viaAdmin.cookie }), 401)
      }).pipe(Effect.scoped, Effect.provide(Layer.fresh(replica)))
    })))
})
