import { ClaimLost, Conflict, NotFound } from "@cowork/domain"
import { ChannelStore, SessionStore, Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { newOrg } from "./ControlPlaneFixtures.ts"

/**
 * What every ChannelStore does (issue 11), on memory and Postgres: bindings per org (unique per provider id and
 * target), session routes (one session per thread, even for concurrent first messages), identities, provider-event
 * claims (durable, once: live claims exclude, expired ones are taken over, completion is fenced), cursors with
 * compare-and-set, gateway grants; another org's object is NotFound.
 */

const bindingInput = { providerKind: "webhook" as const, providerId: "hooks", displayName: "ops hook", externalTarget: "https://example.com/h" }

const orgWithBinding = Effect.gen(function*() {
  const orgId = yield* newOrg
  const binding = yield* (yield* ChannelStore).createBinding(orgId, bindingInput)
  return { orgId, binding }
}).pipe(Effect.orDie)

export const channelStoreContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`ChannelStore contract: ${harness.name}`, () => {
    it.effect("bindings: create, unique per provider id and target, update, list, delete; another org's is NotFound", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const { orgId, binding } = yield* orgWithBinding
        assert.deepInclude(binding, { orgId, status: "active", inboundPolicy: "open", credentialRef: null, inboundCredentialRef: null, statusDetail: null })
        assert.instanceOf(yield* Effect.flip(channels.createBinding(orgId, bindingInput)), Conflict)
        const other = yield* newOrg
        yield* channels.createBinding(other, bindingInput)
        const updated = yield* channels.updateBinding(orgId, binding.id, {
          status: "auth_required",
          statusDetail: "401 from provider",
          credentialRef: "env:HOOK_SECRET",
          inboundCredentialRef: "env:HOOK_IN",
          settings: { format: "json" }
        })
        assert.deepInclude(updated, { status: "auth_required", statusDetail: "401 from provider", credentialRef: "env:HOOK_SECRET", inboundCredentialRef: "env:HOOK_IN" })
        assert.deepStrictEqual(updated.settings, { format: "json" })
        // A patch without the field keeps it; null clears it.
        assert.deepInclude(yield* channels.updateBinding(orgId, binding.id, { displayName: "renamed" }), { inboundCredentialRef: "env:HOOK_IN" })
        const cleared = yield* channels.updateBinding(orgId, binding.id, { statusDetail: null, credentialRef: null, inboundCredentialRef: null })
        assert.deepInclude(cleared, { statusDetail: null, credentialRef: null, inboundCredentialRef: null, status: "auth_required" })
        const created = yield* channels.createBinding(orgId, { ...bindingInput, externalTarget: "https://hooks.example.com/own", inboundCredentialRef: "env:OWN_IN" })
        assert.deepInclude((yield* channels.getBinding(orgId, created.id)), { inboundCredentialRef: "env:OWN_IN" })
        yield* channels.deleteBinding(orgId, created.id)
        assert.instanceOf(yield* Effect.flip(channels.getBinding(other, binding.id)), NotFound)
        assert.instanceOf(yield* Effect.flip(channels.updateBinding(other, binding.id, { status: "disabled" })), NotFound)
        assert.deepStrictEqual((yield* channels.listBindings(orgId)).map((b) => b.id), [binding.id])
        assert.deepStrictEqual(yield* channels.listBindings(orgId, ["chb_none"]), [])
        yield* channels.deleteBinding(orgId, binding.id)
        assert.instanceOf(yield* Effect.flip(channels.getBinding(orgId, binding.id)), NotFound)
      })))

    it.effect("routes: one session per thread, created once even for concurrent first messages; explicit binds conflict", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const sessions = yield* SessionStore
        const { orgId, binding } = yield* orgWithBinding
        let created = 0
        // Yields before creating, so the racing first messages interleave on either layer.
        const create = Effect.yieldNow.pipe(Effect.andThen(Effect.suspend(() => {
          created++
          return sessions.create(orgId, { title: "thread" })
        })))
        const results = yield* Effect.all(
          Array.from({ length: 4 }, () => channels.routeFor(orgId, binding.id, "thread-1", create)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(new Set(results.map((r) => r.route.sessionId)).size, 1, "one session for the thread")
        assert.strictEqual(results.filter((r) => r.created).length, 1)
        assert.deepInclude(results.find((r) => r.created)!.route, { origin: "first_message", externalThreadId: "thread-1" })
        const routes = yield* channels.listRoutes(orgId, binding.id)
        assert.strictEqual(routes.length, 1)
        assert.strictEqual(created, 1, "the losing first messages made no session")
        assert.strictEqual((yield* sessions.list(orgId, { limit: 10 })).sessions.length, 1, "no orphan session")

        const explicit = yield* sessions.create(orgId, {})
        const bound = yield* channels.bindSession(orgId, binding.id, "thread-2", explicit.id)
        assert.deepInclude(bound, { origin: "explicit", sessionId: explicit.id })
        assert.instanceOf(yield* Effect.flip(channels.bindSession(orgId, binding.id, "thread-2", explicit.id)), Conflict)
        const otherOrg = yield* newOrg
        const foreign = yield* sessions.create(otherOrg, {})
        assert.instanceOf(yield* Effect.flip(channels.bindSession(orgId, binding.id, "thread-3", foreign.id)), NotFound, "another org's session")
        const again = yield* channels.routeFor(orgId, binding.id, "thread-2", Effect.die("not called"))
        assert.deepStrictEqual({ sessionId: again.route.sessionId, created: again.created }, { sessionId: explicit.id, created: false })
        yield* channels.unbindSession(orgId, binding.id, bound.id)
        assert.instanceOf(yield* Effect.flip(channels.unbindSession(orgId, binding.id, bound.id)), NotFound)
      })))

    it.effect("identities: one link per provider and external user; found by provider kind, id and external id", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const orgId = yield* newOrg
        const input = { providerKind: "slack" as const, providerId: "slack-main", externalUserId: "U1", accountId: "acc_1", displayName: "Ann" }
        const linked = yield* channels.createIdentity(orgId, input)
        assert.instanceOf(yield* Effect.flip(channels.createIdentity(orgId, input)), Conflict)
        assert.deepStrictEqual(yield* channels.findIdentity(orgId, "slack", "slack-main", "U1"), linked)
        assert.isUndefined(yield* channels.findIdentity(orgId, "slack", "slack-other", "U1"))
        assert.isUndefined(yield* channels.findIdentity(yield* newOrg, "slack", "slack-main", "U1"))
        assert.deepStrictEqual((yield* channels.listIdentities(orgId)).map((i) => i.id), [linked.id])
        yield* channels.deleteIdentity(orgId, linked.id)
        assert.instanceOf(yield* Effect.flip(channels.deleteIdentity(orgId, linked.id)), NotFound)
      })))

    it.effect("provider events: claimed once, in progress while live, taken over after expiry, completion fenced; signatures once ever", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const { orgId, binding } = yield* orgWithBinding
        const claim = (claimedBy: string, providerEventId = "upd-1", kind: "message" | "signature" = "message") =>
          channels.claimProviderEvent(orgId, { channelBindingId: binding.id, providerEventId, kind, ttlMs: 5_000, claimedBy })
        const first = yield* claim("gw-a")
        assert.strictEqual(first.status, "claimed")
        assert.isNotNull(first.claimToken)
        assert.deepInclude(yield* claim("gw-b"), { status: "in_progress", claimToken: null })
        yield* harness.elapse(6_000)
        const takeover = yield* claim("gw-b")
        assert.strictEqual(takeover.status, "claimed")
        const complete = (claimToken: string, outcome: "prompted" | "released" = "prompted") =>
          channels.completeProviderEvent(orgId, { channelBindingId: binding.id, providerEventId: "upd-1", claimToken, outcome })
        const lost = yield* Effect.flip(complete(first.claimToken!))
        assert.instanceOf(lost, ClaimLost)
        assert.strictEqual((lost as ClaimLost).reason, "reclaimed")
        assert.deepInclude(yield* complete(takeover.claimToken!), { status: "completed", outcome: "prompted" })
        assert.deepInclude(yield* claim("gw-c"), { status: "completed", outcome: "prompted", claimToken: null })

        // released: the next claim gets it again.
        const other = yield* claim("gw-a", "upd-2")
        assert.strictEqual((yield* channels.completeProviderEvent(orgId, {
          channelBindingId: binding.id,
          providerEventId: "upd-2",
          claimToken: other.claimToken!,
          outcome: "released"
        })).status, "released")
        assert.strictEqual((yield* claim("gw-b", "upd-2")).status, "claimed")
        // an expired claim cannot complete
        const third = yield* claim("gw-a", "upd-3")
        yield* harness.elapse(6_000)
        const expired = yield* Effect.flip(channels.completeProviderEvent(orgId, {
          channelBindingId: binding.id,
          providerEventId: "upd-3",
          claimToken: third.claimToken!,
          outcome: "prompted"
        }))
        assert.strictEqual((expired as ClaimLost).reason, "expired")

        // A signature: claimed while its request is handled, then accepted for good; one whose request was not
        // handled (the cloud answered 503) is released, or expires, and the provider's retry of it is claimed again.
        const signature = yield* claim("gw-a", "sig-1", "signature")
        assert.strictEqual(signature.status, "claimed")
        assert.deepInclude(yield* claim("gw-b", "sig-1", "signature"), { status: "in_progress", claimToken: null }, "the same request at another replica meanwhile")
        assert.deepInclude(
          yield* channels.completeProviderEvent(orgId, { channelBindingId: binding.id, providerEventId: "sig-1", claimToken: signature.claimToken!, outcome: "accepted" }),
          { status: "completed", outcome: "accepted", kind: "signature" }
        )
        yield* harness.elapse(600_000)
        assert.strictEqual((yield* claim("gw-b", "sig-1", "signature")).status, "completed", "a signature replay, however late")
        const unhandled = yield* claim("gw-a", "sig-2", "signature")
        yield* channels.completeProviderEvent(orgId, { channelBindingId: binding.id, providerEventId: "sig-2", claimToken: unhandled.claimToken!, outcome: "released" })
        assert.strictEqual((yield* claim("gw-b", "sig-2", "signature")).status, "claimed", "the retry after a release")
        yield* claim("gw-a", "sig-3", "signature")
        yield* harness.elapse(6_000)
        assert.strictEqual((yield* claim("gw-b", "sig-3", "signature")).status, "claimed", "the retry after the claim expired")
        assert.instanceOf(
          yield* Effect.flip(channels.claimProviderEvent(yield* newOrg, { channelBindingId: binding.id, providerEventId: "x", kind: "message", ttlMs: 5_000, claimedBy: "g" })),
          NotFound
        )
      })))

    it.effect("provider-event retention: signatures past their window, completed events and abandoned claims past retention, a bounded batch at a time", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const { orgId, binding } = yield* orgWithBinding
        const retention = { signatureRetentionMs: 10 * 60_000, eventRetentionMs: 7 * 86_400_000, limit: 100 }
        const claimAndComplete = (providerEventId: string, kind: "message" | "signature", outcome: "prompted" | "accepted") =>
          Effect.gen(function*() {
            const claim = yield* channels.claimProviderEvent(orgId, { channelBindingId: binding.id, providerEventId, kind, ttlMs: 5_000, claimedBy: "gw" })
            yield* channels.completeProviderEvent(orgId, { channelBindingId: binding.id, providerEventId, claimToken: claim.claimToken!, outcome })
          })
        const status = (providerEventId: string, kind: "message" | "signature") =>
          Effect.map(
            channels.claimProviderEvent(orgId, { channelBindingId: binding.id, providerEventId, kind, ttlMs: 5_000, claimedBy: "probe" }),
            (claim) => claim.status
          )
        yield* claimAndComplete("sig-old", "signature", "accepted")
        yield* claimAndComplete("upd-old", "message", "prompted")
        yield* channels.claimProviderEvent(orgId, { channelBindingId: binding.id, providerEventId: "upd-abandoned", kind: "message", ttlMs: 5_000, claimedBy: "gw" })
        assert.strictEqual(yield* channels.pruneProviderEvents(retention), 0, "nothing is old enough yet")
        yield* harness.elapse(11 * 60_000)
        assert.strictEqual(yield* channels.pruneProviderEvents(retention), 1, "the signature, past its timestamp window")
        assert.strictEqual(yield* status("upd-old", "message"), "completed", "a completed update is kept for the provider's retries")
        yield* harness.elapse(7 * 86_400_000)
        for (let i = 0; i < 3; i++) yield* claimAndComplete(`sig-new-${i}`, "signature", "accepted")
        assert.strictEqual(yield* channels.pruneProviderEvents({ ...retention, limit: 1 }), 1, "a bounded batch")
        assert.strictEqual(yield* channels.pruneProviderEvents(retention), 1, "the rest that is due")
        assert.strictEqual(yield* status("upd-old", "message"), "claimed", "pruned: a new claim")
        assert.strictEqual(yield* status("sig-new-0", "signature"), "completed", "recent signatures stay replays")
        assert.strictEqual(yield* channels.pruneProviderEvents(retention), 0)
      })))

    it.effect("cursors: written, compare-and-set refuses a moved cursor; gateway grants name only the org's bindings", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const { orgId, binding } = yield* orgWithBinding
        const put = (value: string, expectedValue?: string | null) =>
          channels.putCursor(orgId, { channelBindingId: binding.id, name: "telegram:offset", value, expectedValue }, "tok_gw")
        assert.deepInclude(yield* put("10", null), { value: "10", updatedBy: "tok_gw" })
        assert.instanceOf(yield* Effect.flip(put("11", null)), Conflict, "exists already")
        assert.instanceOf(yield* Effect.flip(put("11", "9")), Conflict, "moved")
        assert.strictEqual((yield* put("11", "10")).value, "11")
        assert.strictEqual((yield* put("12")).value, "12")
        assert.deepStrictEqual((yield* channels.listCursors(orgId, [binding.id])).map((c) => c.value), ["12"])
        assert.deepStrictEqual(yield* channels.listCursors(yield* newOrg, undefined), [])

        const other = yield* orgWithBinding
        const gateway = (yield* (yield* Tokens).issue({ orgId, name: "gw", scopes: ["gateway"] }).pipe(Effect.orDie)).tokenId
        assert.instanceOf(yield* Effect.flip(channels.grantGatewayToken(orgId, gateway, [binding.id, other.binding.id])), NotFound)
        assert.deepStrictEqual(yield* channels.gatewayBindings(orgId, gateway), [], "nothing granted")
        yield* channels.grantGatewayToken(orgId, gateway, [binding.id])
        assert.deepStrictEqual(yield* channels.gatewayBindings(orgId, gateway), [binding.id])
        assert.deepStrictEqual(yield* channels.gatewayBindings(other.orgId, gateway), [])
        assert.deepStrictEqual([...(yield* channels.listGatewayGrants(orgId))], [[gateway, [binding.id]]])
      })))
  })
