import { Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"

/** Orgs and API tokens: bootstrap once, authenticate by hash, and every refusal with its internal reason. */
export const tokensContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`Tokens contract: ${harness.name}`, () => {
    it.effect("bootstrap creates the first org and its owner token once", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const tokens = yield* Tokens
        const first = yield* tokens.bootstrap("Acme")
        assert.isDefined(first.owner)
        assert.sameMembers([...first.owner!.scopes], ["admin", "operator", "web"])
        assert.match(Redacted.value(first.owner!.token), /^occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/)
        const principal = yield* tokens.authenticate(first.owner!.token)
        assert.deepStrictEqual(principal, { kind: "org", orgId: first.orgId, tokenId: first.owner!.tokenId, scopes: principal.scopes })
        const again = yield* tokens.bootstrap("Other")
        assert.deepStrictEqual(again, { orgId: first.orgId, owner: undefined })
      })))

    it.effect("authenticate refuses missing, malformed, wrong, revoked and expired tokens with their reasons", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const tokens = yield* Tokens
        const { orgId } = yield* tokens.createOrg("org")
        const issued = yield* tokens.issue({ orgId, name: "ci", scopes: ["web"] })
        const short = yield* tokens.issue({ orgId, name: "short", scopes: ["web"], expiresInMs: 60_000 })
        assert.isNotNull(short.expiresAt)
        const reason = (raw: string) =>
          Effect.map(Effect.flip(tokens.authenticate(Redacted.make(raw))), (e) => [e._tag, e.reason] as const)
        assert.deepStrictEqual((yield* tokens.authenticate(issued.token)).scopes, ["web"])
        assert.deepStrictEqual(yield* reason(""), ["Unauthorized", "missing_credentials"])
        assert.deepStrictEqual(yield* reason("Bearer nonsense"), ["Unauthorized", "invalid_token"])
        const [, id, secret] = /^occ_([^_]+)_(.+)$/.exec(Redacted.value(issued.token))!
        assert.deepStrictEqual(yield* reason(`occ_${id}_${secret!.replace(/.$/, (c) => (c === "A" ? "B" : "A"))}`), ["Unauthorized", "invalid_token"])
        assert.deepStrictEqual(yield* reason(`occ_UnknownTokenId1234_${secret}`), ["Unauthorized", "invalid_token"])
        const otherOrg = (yield* tokens.createOrg("other")).orgId
        assert.strictEqual((yield* Effect.flip(tokens.revoke(issued.tokenId, { orgId: otherOrg })))._tag, "NotFound", "another org's token")
        const live = yield* tokens.invalidAmong([issued.tokenId, short.tokenId])
        assert.deepStrictEqual(live.ended, [])
        assert.isNotNull(live.nextExpiryInMs, "the short-lived token's expiry is the next check")
        assert.isTrue(live.nextExpiryInMs! > 50_000 && live.nextExpiryInMs! <= 60_000, `expires in ${live.nextExpiryInMs} ms`)
        assert.isNull((yield* tokens.invalidAmong([issued.tokenId])).nextExpiryInMs, "a token without expiry never needs a check")
        const revoked = yield* tokens.revoke(issued.tokenId, { orgId })
        assert.isNotNull(revoked.revokedAt)
        assert.deepStrictEqual(yield* tokens.revoke(issued.tokenId, { orgId }), revoked, "already revoked: unchanged")
        assert.deepStrictEqual((yield* tokens.invalidAmong([issued.tokenId, short.tokenId])).ended, [issued.tokenId])
        assert.deepStrictEqual(yield* reason(Redacted.value(issued.token)), ["Unauthorized", "revoked_token"])
        yield* tokens.authenticate(short.token)
        yield* harness.elapse(60_000)
        assert.deepStrictEqual(yield* reason(Redacted.value(short.token)), ["Unauthorized", "expired_token"])
        assert.deepStrictEqual(yield* tokens.invalidAmong([short.tokenId]), { ended: [short.tokenId], nextExpiryInMs: null }, "expired by the store clock")
      })))

    it.effect("lists show metadata only; an unknown org is NotFound; platform tokens belong to no org", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const tokens = yield* Tokens
        const { orgId } = yield* tokens.createOrg("org")
        const issued = yield* tokens.issue({ orgId, name: "ci", scopes: ["web", "admin"], expiresInMs: 3_600_000 })
        assert.deepInclude(issued.view, { id: issued.tokenId, name: "ci", scopes: ["web", "admin"], lastUsedAt: null, revokedAt: null })
        assert.strictEqual((yield* Effect.flip(tokens.issue({ orgId: "org_nope", name: "x", scopes: ["web"] })))._tag, "NotFound")
        const listed = yield* tokens.list(orgId)
        assert.deepStrictEqual(listed.map((t) => t.id), [issued.tokenId])
        assert.notInclude(JSON.stringify(listed), Redacted.value(issued.token).split("_").slice(2).join("_"))

        const platform = yield* tokens.issuePlatform({ name: "ops", scopes: ["operator"] })
        assert.deepStrictEqual(yield* tokens.authenticate(platform.token), { kind: "platform", tokenId: platform.tokenId, scopes: ["operator"] })
        assert.notInclude((yield* tokens.list(orgId)).map((t) => t.id), platform.tokenId)
        const all = yield* tokens.listAll({})
        assert.deepInclude(all.find((t) => t.id === platform.tokenId)!, { orgId: null, kind: "platform" })
        assert.deepStrictEqual((yield* tokens.listAll({ orgId })).map((t) => t.id), [issued.tokenId])
        assert.strictEqual((yield* Effect.flip(tokens.revoke(platform.tokenId, { orgId })))._tag, "NotFound", "an org cannot revoke a platform token")
        assert.isNotNull((yield* tokens.revoke(platform.tokenId, {})).revokedAt)
        assert.include((yield* tokens.listOrgs).map((o) => o.id), orgId)
      })))
  })
