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
        assert.deepStrictEqual(principal, { orgId: first.orgId, tokenId: first.owner!.tokenId, scopes: principal.scopes })
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
        assert.isFalse(yield* tokens.revoke((yield* tokens.createOrg("other")).orgId, issued.tokenId), "another org's token")
        assert.isTrue(yield* tokens.revoke(orgId, issued.tokenId))
        assert.isFalse(yield* tokens.revoke(orgId, issued.tokenId), "already revoked")
        assert.deepStrictEqual(yield* reason(Redacted.value(issued.token)), ["Unauthorized", "revoked_token"])
        yield* tokens.authenticate(short.token)
        yield* harness.elapse(60_000)
        assert.deepStrictEqual(yield* reason(Redacted.value(short.token)), ["Unauthorized", "expired_token"])
      })))
  })
