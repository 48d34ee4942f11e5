import {
  type ChannelBinding,
  type ChannelCursor,
  type ChannelIdentity,
  type ChannelRoute,
  ClaimLost,
  Conflict,
  newChannelBindingId,
  newChannelIdentityId,
  newChannelRouteId,
  NotFound,
  type ProviderEventClaim
} from "@cowork/domain"
import { Clock, Effect, Semaphore } from "effect"
import type { ChannelStore, MemoryProviderEvent } from "./ChannelStore.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"

const bindingNotFound = () => new NotFound({ message: "channel binding not found" })

const strip = <T extends { readonly orgId: string }>({ orgId: _orgId, ...rest }: T): Omit<T, "orgId"> => rest

export const makeChannelStoreMemory = (db: MemoryTables): ChannelStore["Service"] => {
  const channels = db.channelTables
  const iso = (ms: number) => new Date(ms).toISOString()

  const binding = (orgId: string, bindingId: string) => {
    const row = channels.bindings.get(bindingId)
    return row !== undefined && row.orgId === orgId ? Effect.succeed(row) : Effect.fail(bindingNotFound())
  }
  const bindingView = (row: ChannelBinding): ChannelBinding => ({ ...row })

  const eventKey = (bindingId: string, providerEventId: string) => `${bindingId}\u0000${providerEventId}`
  const claimView = (
    bindingId: string,
    providerEventId: string,
    row: MemoryProviderEvent,
    status: ProviderEventClaim["status"],
    claimToken: string | null
  ): ProviderEventClaim => ({
    channelBindingId: bindingId,
    providerEventId,
    kind: row.kind,
    status,
    claimToken,
    outcome: row.outcome,
    claimExpiresAt: row.status === "claimed" && row.claimExpiresAt !== null ? iso(row.claimExpiresAt) : null
  })

  const newRoute = (orgId: string, bindingId: string, externalThreadId: string, sessionId: string, origin: ChannelRoute["origin"], now: number) => {
    const route = { id: newChannelRouteId(), orgId, channelBindingId: bindingId, externalThreadId, sessionId, origin, createdAt: iso(now) }
    channels.routes.set(route.id, route)
    return route
  }
  /** One lock per binding, as the Pg layer locks the binding row: a thread's first messages make one session. */
  const firstMessageLocks = new Map<string, Semaphore.Semaphore>()
  const firstMessageLock = (bindingId: string) => {
    let lock = firstMessageLocks.get(bindingId)
    if (lock === undefined) {
      lock = Semaphore.makeUnsafe(1)
      firstMessageLocks.set(bindingId, lock)
    }
    return lock
  }
  const routeOf = (bindingId: string, externalThreadId: string) =>
    [...channels.routes.values()].find((r) => r.channelBindingId === bindingId && r.externalThreadId === externalThreadId)

  return {
    createBinding: (orgId, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const clash = [...channels.bindings.values()].some((b) =>
          b.orgId === orgId && b.providerId === input.providerId && b.externalTarget === input.externalTarget
        )
        if (clash) {
          return yield* new Conflict({
            message: "a binding for this provider id and target exists",
            details: { field: "externalTarget" }
          })
        }
        const row = {
          id: newChannelBindingId(),
          orgId,
          providerKind: input.providerKind,
          providerId: input.providerId,
          displayName: input.displayName,
          status: input.status ?? "active",
          statusDetail: null,
          settings: input.settings ?? {},
          credentialRef: input.credentialRef ?? null,
          inboundCredentialRef: input.inboundCredentialRef ?? null,
          externalTarget: input.externalTarget,
          inboundPolicy: input.inboundPolicy ?? "open",
          createdAt: iso(now),
          updatedAt: iso(now)
        } as const
        channels.bindings.set(row.id, row)
        return bindingView(row)
      }),
    listBindings: (orgId, bindingIds) =>
      Effect.sync(() =>
        [...channels.bindings.values()]
          .filter((b) => b.orgId === orgId && (bindingIds === undefined || bindingIds.includes(b.id)))
          .map(bindingView)
      ),
    getBinding: (orgId, bindingId) => Effect.map(binding(orgId, bindingId), bindingView),
    updateBinding: (orgId, bindingId, patch) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const row = yield* binding(orgId, bindingId)
        const externalTarget = patch.externalTarget ?? row.externalTarget
        const clash = [...channels.bindings.values()].some((b) =>
          b.id !== bindingId && b.orgId === orgId && b.providerId === row.providerId && b.externalTarget === externalTarget
        )
        if (clash) return yield* new Conflict({ message: "a binding for this provider id and target exists", details: { field: "externalTarget" } })
        const next = {
          ...row,
          displayName: patch.displayName ?? row.displayName,
          externalTarget,
          status: patch.status ?? row.status,
          statusDetail: patch.statusDetail !== undefined ? patch.statusDetail : row.statusDetail,
          settings: patch.settings ?? row.settings,
          credentialRef: patch.credentialRef !== undefined ? patch.credentialRef : row.credentialRef,
          inboundCredentialRef: patch.inboundCredentialRef !== undefined ? patch.inboundCredentialRef : row.inboundCredentialRef,
          inboundPolicy: patch.inboundPolicy ?? row.inboundPolicy,
          updatedAt: iso(now)
        }
        channels.bindings.set(bindingId, next)
        return bindingView(next)
      }),
    deleteBinding: (orgId, bindingId) =>
      Effect.gen(function*() {
        const row = yield* binding(orgId, bindingId)
        channels.bindings.delete(bindingId)
        for (const [id, route] of channels.routes) if (route.channelBindingId === bindingId) channels.routes.delete(id)
        for (let i = channels.deliveries.length - 1; i >= 0; i--) {
          if (channels.deliveries[i]!.channelBindingId === bindingId) channels.deliveries.splice(i, 1)
        }
        for (const key of channels.providerEvents.keys()) if (key.startsWith(`${bindingId}\u0000`)) channels.providerEvents.delete(key)
        for (const key of channels.cursors.keys()) if (key.startsWith(`${bindingId}\u0000`)) channels.cursors.delete(key)
        for (const grant of channels.gatewayGrants.values()) grant.bindingIds.delete(bindingId)
        return bindingView(row)
      }),

    listRoutes: (orgId, bindingId) =>
      Effect.map(binding(orgId, bindingId), () =>
        [...channels.routes.values()].filter((r) => r.channelBindingId === bindingId).map((r) => strip(r))),
    bindSession: (orgId, bindingId, externalThreadId, sessionId) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* binding(orgId, bindingId)
        if (db.sessions.get(sessionId)?.orgId !== orgId) return yield* new NotFound({ message: "session not found" })
        if (routeOf(bindingId, externalThreadId) !== undefined) {
          return yield* new Conflict({ message: "this thread is already bound to a session", details: { field: "externalThreadId" } })
        }
        return strip(newRoute(orgId, bindingId, externalThreadId, sessionId, "explicit", now))
      }),
    unbindSession: (orgId, bindingId, routeId) =>
      Effect.gen(function*() {
        yield* binding(orgId, bindingId)
        const route = channels.routes.get(routeId)
        if (route === undefined || route.channelBindingId !== bindingId) return yield* new NotFound({ message: "route not found" })
        channels.routes.delete(routeId)
        return strip(route)
      }),
    routeFor: (orgId, bindingId, externalThreadId, createSession) =>
      Effect.gen(function*() {
        yield* binding(orgId, bindingId)
        const existing = routeOf(bindingId, externalThreadId)
        if (existing !== undefined) return { route: strip(existing), created: false }
        return yield* firstMessageLock(bindingId).withPermits(1)(Effect.gen(function*() {
          const raced = routeOf(bindingId, externalThreadId)
          if (raced !== undefined) return { route: strip(raced), created: false }
          const session = yield* createSession
          const now = yield* Clock.currentTimeMillis
          return { route: strip(newRoute(orgId, bindingId, externalThreadId, session.id, "first_message", now)), created: true }
        }))
      }),

    createIdentity: (orgId, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const clash = [...channels.identities.values()].some((i) =>
          i.orgId === orgId && i.providerKind === input.providerKind && i.providerId === input.providerId &&
          i.externalUserId === input.externalUserId
        )
        if (clash) return yield* new Conflict({ message: "this external user is already linked", details: { field: "externalUserId" } })
        const row = {
          id: newChannelIdentityId(),
          orgId,
          providerKind: input.providerKind,
          providerId: input.providerId,
          externalUserId: input.externalUserId,
          accountId: input.accountId,
          displayName: input.displayName ?? null,
          createdAt: iso(now)
        }
        channels.identities.set(row.id, row)
        return strip(row)
      }),
    listIdentities: (orgId) =>
      Effect.sync(() => [...channels.identities.values()].filter((i) => i.orgId === orgId).map((i) => strip(i))),
    deleteIdentity: (orgId, identityId) =>
      Effect.gen(function*() {
        const row = channels.identities.get(identityId)
        if (row === undefined || row.orgId !== orgId) return yield* new NotFound({ message: "identity not found" })
        channels.identities.delete(identityId)
        return strip(row)
      }),
    findIdentity: (orgId, providerKind, providerId, externalUserId) =>
      Effect.sync(() => {
        const row = [...channels.identities.values()].find((i) =>
          i.orgId === orgId && i.providerKind === providerKind && i.providerId === providerId && i.externalUserId === externalUserId
        )
        return row === undefined ? undefined : strip(row) as ChannelIdentity
      }),

    claimProviderEvent: (orgId, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* binding(orgId, input.channelBindingId)
        const key = eventKey(input.channelBindingId, input.providerEventId)
        const row = channels.providerEvents.get(key)
        if (row !== undefined && row.status === "completed") {
          return claimView(input.channelBindingId, input.providerEventId, row, "completed", null)
        }
        if (row !== undefined && row.claimExpiresAt !== null && row.claimExpiresAt > now) {
          return claimView(input.channelBindingId, input.providerEventId, row, "in_progress", null)
        }
        const claimToken = globalThis.crypto.randomUUID()
        const claimed: MemoryProviderEvent = {
          orgId,
          kind: input.kind,
          status: "claimed",
          claimToken,
          claimExpiresAt: now + input.ttlMs,
          outcome: null
        }
        channels.providerEvents.set(key, claimed)
        return claimView(input.channelBindingId, input.providerEventId, claimed, "claimed", claimToken)
      }),
    completeProviderEvent: (orgId, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* binding(orgId, input.channelBindingId)
        const key = eventKey(input.channelBindingId, input.providerEventId)
        const row = channels.providerEvents.get(key)
        const lost = (reason: "expired" | "reclaimed" | "not_claimed") =>
          new ClaimLost({ kind: "provider_event", id: input.providerEventId, reason })
        if (row === undefined || row.status !== "claimed") return yield* lost("not_claimed")
        if (row.claimToken !== input.claimToken) return yield* lost("reclaimed")
        if (row.claimExpiresAt === null || row.claimExpiresAt <= now) return yield* lost("expired")
        if (input.outcome === "released") {
          channels.providerEvents.delete(key)
          return { ...claimView(input.channelBindingId, input.providerEventId, row, "released", null), claimExpiresAt: null }
        }
        row.status = "completed"
        row.claimToken = null
        row.claimExpiresAt = null
        row.outcome = input.outcome
        row.completedAt = now
        return claimView(input.channelBindingId, input.providerEventId, row, "completed", null)
      }),

    pruneProviderEvents: (retention) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        let pruned = 0
        for (const [key, row] of channels.providerEvents) {
          if (pruned >= retention.limit) break
          const keep = row.kind === "signature" ? retention.signatureRetentionMs : retention.eventRetentionMs
          const expired = row.status === "completed"
            ? (row.completedAt ?? now) < now - keep
            : row.claimExpiresAt !== null && row.claimExpiresAt < now - retention.eventRetentionMs
          if (!expired) continue
          channels.providerEvents.delete(key)
          pruned++
        }
        return pruned
      }),

    listCursors: (orgId, bindingIds) =>
      Effect.sync(() =>
        [...channels.cursors.values()]
          .filter((c) => c.orgId === orgId && (bindingIds === undefined || bindingIds.includes(c.channelBindingId)))
          .map((c) => strip(c))
      ),
    putCursor: (orgId, write, updatedBy) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* binding(orgId, write.channelBindingId)
        const key = `${write.channelBindingId}\u0000${write.name}`
        const current = channels.cursors.get(key)
        if (write.expectedValue !== undefined && (current?.value ?? null) !== write.expectedValue) {
          return yield* new Conflict({
            message: "the cursor moved: read it again",
            details: { field: "expectedValue", name: write.name }
          })
        }
        const row: ChannelCursor & { readonly orgId: string } = {
          orgId,
          channelBindingId: write.channelBindingId,
          name: write.name,
          value: write.value,
          updatedAt: iso(now),
          updatedBy
        }
        channels.cursors.set(key, row)
        return strip(row)
      }),

    grantGatewayToken: (orgId, tokenId, bindingIds) =>
      Effect.gen(function*() {
        for (const bindingId of bindingIds) yield* binding(orgId, bindingId)
        const grant = channels.gatewayGrants.get(tokenId) ?? { orgId, bindingIds: new Set<string>() }
        for (const bindingId of bindingIds) grant.bindingIds.add(bindingId)
        channels.gatewayGrants.set(tokenId, grant)
      }),
    gatewayBindings: (orgId, tokenId) =>
      Effect.sync(() => {
        const grant = channels.gatewayGrants.get(tokenId)
        return grant === undefined || grant.orgId !== orgId ? [] : [...grant.bindingIds]
      }),
    listGatewayGrants: (orgId) =>
      Effect.sync(() =>
        new Map([...channels.gatewayGrants].filter(([, grant]) => grant.orgId === orgId).map(([tokenId, grant]) => [tokenId, [...grant.bindingIds]]))
      )
  }
}
