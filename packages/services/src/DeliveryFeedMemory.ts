import {
  type ChannelDelivery,
  type ClaimedDelivery,
  ClaimLost,
  Conflict,
  decodeSessionCursor,
  type DeliveryStatus,
  DeliveryStatus as DeliveryStatusSchema,
  encodeSessionCursor,
  Forbidden,
  NotFound
} from "@cowork/domain"
import { Clock, Effect, PubSub, Random, Stream } from "effect"
import type { MemoryDelivery } from "./ChannelStore.ts"
import {
  type DeliveryFeed,
  type DeliveryFeedOptions,
  type DeliveryScope,
  deliveryBackoffMs,
  MAX_DELIVERY_ERROR_LENGTH
} from "./DeliveryFeed.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { admitInMemoryWindow, HOUR_MS } from "./QuotaRules.ts"

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export const deliveryNotFound = () => new NotFound({ message: "delivery not found" })

export const makeDeliveryFeedMemory = (db: MemoryTables, options: DeliveryFeedOptions): DeliveryFeed["Service"] => {
  const channels = db.channelTables
  /** First attempts claimed per org per clock hour (the Pg layer keeps them in cloud_quota_windows). */
  const deliveryWindows = new Map<string, number>()

  const view = (row: MemoryDelivery): ChannelDelivery => {
    const binding = channels.bindings.get(row.channelBindingId)
    return {
      id: row.id,
      channelBindingId: row.channelBindingId,
      providerKind: binding?.providerKind ?? "webhook",
      providerId: binding?.providerId ?? "",
      externalTarget: binding?.externalTarget ?? "",
      externalThreadId: row.externalThreadId,
      sessionId: row.sessionId,
      eventId: row.eventId,
      eventSequence: row.eventSequence,
      eventType: row.eventType,
      kind: row.kind,
      payload: row.payload,
      status: row.status,
      attempts: row.attempts,
      maxAttempts: row.maxAttempts,
      nextAttemptAt: row.status === "pending" || row.status === "failed" ? iso(row.nextAttemptAt) : null,
      claimExpiresAt: row.status === "claimed" ? iso(row.claimExpiresAt) : null,
      lastClaimedBy: row.lastClaimedBy,
      lastClaimedReplica: row.lastClaimedReplica,
      lastError: row.lastError,
      idempotencyKey: row.idempotencyKey,
      providerMessageId: row.providerMessageId,
      createdAt: new Date(row.createdAt).toISOString(),
      updatedAt: new Date(row.updatedAt).toISOString(),
      sentAt: iso(row.sentAt)
    }
  }

  const inScope = (scope: DeliveryScope, row: MemoryDelivery) =>
    row.orgId === scope.orgId && (scope.bindingIds === undefined || scope.bindingIds.includes(row.channelBindingId))

  const find = (scope: DeliveryScope, deliveryId: string) => {
    const row = channels.deliveries.find((d) => d.id === deliveryId)
    return row !== undefined && inScope(scope, row) ? Effect.succeed(row) : Effect.fail(deliveryNotFound())
  }

  /** The fence: the caller's token is the live claim. */
  const held = (row: MemoryDelivery, claimToken: string, now: number) => {
    if (row.status !== "claimed" || row.claimToken === null) return new ClaimLost({ kind: "delivery", id: row.id, reason: "not_claimed" })
    if (row.claimToken !== claimToken) return new ClaimLost({ kind: "delivery", id: row.id, reason: "reclaimed" })
    if (row.claimExpiresAt === null || row.claimExpiresAt <= now) return new ClaimLost({ kind: "delivery", id: row.id, reason: "expired" })
    return undefined
  }

  const release = (row: MemoryDelivery, now: number) => {
    row.claimToken = null
    row.claimExpiresAt = null
    row.updatedAt = now
  }

  const reap = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      const expired = channels.deliveries
        .filter((row) => row.status === "claimed" && row.claimExpiresAt !== null && row.claimExpiresAt <= now)
        .sort((a, b) => a.claimExpiresAt! - b.claimExpiresAt!)
      const batch = expired.slice(0, options.reapLimit)
      let dead = 0
      for (const row of batch) {
        release(row, now)
        row.lastError ??= "claim expired before an ack"
        if (row.attempts >= row.maxAttempts) {
          row.status = "dead"
          dead++
        } else {
          row.status = "pending"
          row.nextAttemptAt = now
        }
      }
      if (batch.length > dead) {
        for (const bindingId of new Set(batch.filter((row) => row.status === "pending").map((row) => row.channelBindingId))) {
          const orgId = channels.bindings.get(bindingId)?.orgId
          if (orgId !== undefined) PubSub.publishUnsafe(db.deliveryNotices, { orgId, channelBindingId: bindingId })
        }
      }
      return { returned: batch.length - dead, dead, capped: expired.length > batch.length || batch.length === options.reapLimit }
    }))

  return {
    claim: (scope, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const due = channels.deliveries
          .filter((row) =>
            inScope(scope, row) && (row.status === "pending" || row.status === "failed") && row.nextAttemptAt <= now &&
            channels.bindings.get(row.channelBindingId)?.status === "active"
          )
          .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1))
          .slice(0, input.limit)
        const claimed: Array<ClaimedDelivery> = []
        let deferredByQuota = 0
        for (const row of due) {
          if (row.attempts === 0 && input.deliveriesPerHour !== undefined) {
            const admitted = yield* Effect.result(
              admitInMemoryWindow(deliveryWindows, scope.orgId, "channel_deliveries_per_hour", 1, input.deliveriesPerHour, HOUR_MS, now)
            )
            if (admitted._tag === "Failure") {
              deferredByQuota++
              row.nextAttemptAt = now + admitted.failure.retryAfterMs
              row.updatedAt = now
              continue
            }
          }
          const claimToken = globalThis.crypto.randomUUID()
          row.status = "claimed"
          row.attempts += 1
          row.maxAttempts = options.maxAttempts
          row.claimToken = claimToken
          row.claimExpiresAt = now + input.ttlMs
          row.lastClaimedBy = input.claimedBy
          row.lastClaimedReplica = input.replica ?? null
          row.updatedAt = now
          claimed.push({ ...view(row), claimToken })
        }
        return { deliveries: claimed, deferredByQuota }
      }),
    renew: (scope, deliveryId, claimToken, ttlMs) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const row = yield* find(scope, deliveryId)
        const lost = held(row, claimToken, now)
        if (lost !== undefined) return yield* lost
        row.claimExpiresAt = now + ttlMs
        row.updatedAt = now
        return view(row)
      }),
    ack: (scope, deliveryId, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const jitter = yield* Random.next
        const row = yield* find(scope, deliveryId)
        const lost = held(row, input.claimToken, now)
        if (lost !== undefined) return yield* lost
        release(row, now)
        if (input.providerMessageId !== undefined) row.providerMessageId = input.providerMessageId
        if (input.error !== undefined) row.lastError = input.error.slice(0, MAX_DELIVERY_ERROR_LENGTH)
        if (input.outcome === "sent") {
          row.status = "sent"
          row.sentAt = now
        } else if (input.outcome === "dead" || row.attempts >= row.maxAttempts) {
          row.status = "dead"
        } else {
          row.status = "failed"
          row.nextAttemptAt = now + deliveryBackoffMs(options, row.attempts, jitter, input.retryAfterMs)
        }
        return view(row)
      }),
    retry: (scope, deliveryId, lastClaimedBy) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const row = yield* find(scope, deliveryId)
        if (lastClaimedBy !== undefined && row.lastClaimedBy !== lastClaimedBy) {
          return yield* new Forbidden({ message: "this gateway token did not claim this delivery last" })
        }
        if (row.status !== "failed" && row.status !== "dead") {
          return yield* new Conflict({ message: `a ${row.status} delivery cannot be retried`, details: { status: row.status } })
        }
        row.status = "pending"
        row.attempts = 0
        row.nextAttemptAt = now
        row.updatedAt = now
        const orgId = row.orgId
        PubSub.publishUnsafe(db.deliveryNotices, { orgId, channelBindingId: row.channelBindingId })
        return view(row)
      }),
    deadLetter: (scope, deliveryId, reason, lastClaimedBy) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const row = yield* find(scope, deliveryId)
        if (lastClaimedBy !== undefined && row.lastClaimedBy !== lastClaimedBy) {
          return yield* new Forbidden({ message: "this gateway token did not claim this delivery last" })
        }
        if (row.status === "sent" || row.status === "dead") {
          return yield* new Conflict({ message: `a ${row.status} delivery cannot be dead-lettered`, details: { status: row.status } })
        }
        release(row, now)
        row.status = "dead"
        if (reason !== undefined) row.lastError = reason.slice(0, MAX_DELIVERY_ERROR_LENGTH)
        return view(row)
      }),
    get: (scope, deliveryId) => Effect.map(find(scope, deliveryId), view),
    list: (scope, query) =>
      Effect.sync(() => {
        // Newest first: the table is in insertion order.
        const matching = channels.deliveries
          .filter((row) =>
            inScope(scope, row) && (query.status === undefined || row.status === query.status) &&
            (query.channelBindingId === undefined || row.channelBindingId === query.channelBindingId)
          )
          .reverse()
        const afterId = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor)
        const start = afterId === undefined ? 0 : matching.findIndex((row) => row.id === afterId) + 1
        const page = matching.slice(start, start + query.limit)
        const more = start + query.limit < matching.length
        return {
          deliveries: page.map(view),
          nextCursor: more && page.length > 0 ? encodeSessionCursor(page[page.length - 1]!.id) : null,
          totalEstimate: matching.length
        }
      }),
    reap,
    notices: Effect.map(PubSub.subscribe(db.deliveryNotices), Stream.fromSubscription),
    countsByStatus: (orgId) => Effect.sync(() => {
      const counts = Object.fromEntries(DeliveryStatusSchema.literals.map((status) => [status, 0])) as Record<DeliveryStatus, number>
      for (const row of channels.deliveries) if (orgId === undefined || row.orgId === orgId) counts[row.status]++
      return counts
    })
  }
}
