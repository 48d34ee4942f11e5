import { Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "../../../test/support/SseClient.ts"
import { baseUrl, layer, orgWithToken, request } from "./support/WebTestServer.ts"

/** Issue 8 item 5: API tokens are listed, created (plaintext once) and revoked; revocation and expiry end open streams. */

/** Waits for the server to end `stream`, at most `withinMs` (a deadline, not a sleep). */
const endsWithin = (stream: { readonly ended: Effect.Effect<void> }, withinMs: number, what: string) =>
  stream.ended.pipe(
    Effect.timeoutOrElse({ duration: withinMs, orElse: () => Effect.die(new Error(`${what}: the stream was still open after ${withinMs} ms`)) })
  )

/** Opens a session in `admin`'s org and a stream of its events with `token`. */
const openStream = (admin: string, token: string) =>
  Effect.gen(function*() {
    const session = (yield* request("POST", "/api/sessions", { token: admin, body: {} })).body.session.id as string
    const stream = yield* connect(`${yield* baseUrl}/api/sessions/${session}/events`, { authorization: `Bearer ${token}` })
    assert.strictEqual(stream.status, 200)
    yield* stream.waitFor((frames) => frames.some((frame) => frame.event === "session.created"))
    return stream
  })

it.layer(layer, { excludeTestServices: true })("API tokens", (it) => {
  it.effect("create shows the secret once; list shows metadata only; another org's token is a 404; no scope escalation", () =>
    Effect.gen(function*() {
      const admin = yield* orgWithToken(["admin", "web"])
      const other = yield* orgWithToken(["admin"])
      const created = yield* request("POST", "/api/api-tokens", {
        token: admin.token,
        body: { name: "ci", scopes: ["web"], expiresInSeconds: 3600 }
      })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      const secret = created.body.secret as string
      assert.match(secret, /^occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/)
      assert.deepInclude(created.body.token, { name: "ci", scopes: ["web"], revokedAt: null, lastUsedAt: null })
      assert.isString(created.body.token.expiresAt)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: secret })).status, 200, "the new token works")

      const listed = yield* request("GET", "/api/api-tokens", { token: admin.token })
      assert.strictEqual(listed.status, 200)
      const row = listed.body.tokens.find((t: any) => t.id === created.body.token.id)
      assert.deepStrictEqual(Object.keys(row).sort(), ["createdAt", "expiresAt", "id", "lastUsedAt", "name", "revokedAt", "scopes"])
      assert.isString(row.lastUsedAt, "last use is recorded")
      assert.notInclude(JSON.stringify(listed.body), secret.slice(`occ_${created.body.token.id}_`.length), "never the secret")

      const foreignList = yield* request("GET", "/api/api-tokens", { token: other.token })
      assert.notInclude(foreignList.body.tokens.map((t: any) => t.id), created.body.token.id)
      const foreignRevoke = yield* request("DELETE", `/api/api-tokens/${created.body.token.id}`, { token: other.token })
      assert.strictEqual(foreignRevoke.status, 404)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: secret })).status, 200, "still valid")

      const escalate = yield* request("POST", "/api/api-tokens", { token: admin.token, body: { name: "ops", scopes: ["operator"] } })
      assert.strictEqual(escalate.status, 403)
      const webOnly = yield* orgWithToken(["web"])
      assert.strictEqual((yield* request("GET", "/api/api-tokens", { token: webOnly.token })).status, 403)

      const revoked = yield* request("DELETE", `/api/api-tokens/${created.body.token.id}`, { token: admin.token })
      assert.strictEqual(revoked.status, 200)
      assert.isString(revoked.body.token.revokedAt)
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: secret })).status, 401)
      const again = yield* request("DELETE", `/api/api-tokens/${created.body.token.id}`, { token: admin.token })
      assert.deepStrictEqual(again.body.token, revoked.body.token, "revoking twice changes nothing")
    }))

  it.effect("revoking a token (over the API, or elsewhere: the CLI) and its expiry end its open event streams within seconds", () =>
    Effect.scoped(Effect.gen(function*() {
      const admin = yield* orgWithToken(["admin", "web"])
      const tokens = yield* Tokens
      const issue = (body: Record<string, unknown>) =>
        Effect.map(request("POST", "/api/api-tokens", { token: admin.token, body }), (response) => response.body)

      const viaApi = yield* issue({ name: "stream-api", scopes: ["web"] })
      const apiStream = yield* openStream(admin.token, viaApi.secret)
      yield* request("DELETE", `/api/api-tokens/${viaApi.token.id}`, { token: admin.token })
      yield* endsWithin(apiStream, 5_000, "revoked over the API")

      const viaCli = yield* issue({ name: "stream-cli", scopes: ["web"] })
      const cliStream = yield* openStream(admin.token, viaCli.secret)
      yield* tokens.revoke(viaCli.token.id, {})
      yield* endsWithin(cliStream, 6_000, "revoked by another process")

      const shortLived = yield* issue({ name: "stream-expiry", scopes: ["web"], expiresInSeconds: 1 })
      const expiring = yield* openStream(admin.token, shortLived.secret)
      yield* endsWithin(expiring, 8_000, "expired")

      const untouched = yield* issue({ name: "stream-kept", scopes: ["web"] })
      const kept = yield* openStream(admin.token, untouched.secret)
      const stillOpen = yield* kept.ended.pipe(Effect.timeoutOption(3_000))
      assert.isTrue(stillOpen._tag === "None", "a valid token's stream stays open")
    })), { timeout: 60_000 })
})
