import type { InboundMessage, ProviderKind } from "@cowork/channels"
import {
  type AckOutcome,
  type AckResult,
  admittedBinding,
  type AnswerAdmission,
  ClaimLost,
  CloudChannels,
  CloudUnavailable,
  type ClaimedDelivery,
  DeliveryNotFound,
  type DeliveryView,
  inboundCandidate,
  type InboundBindingView,
  type SignatureClaim
} from "@cowork/gateway"
import { Effect, Layer, PubSub, Stream } from "effect"

/**
 * The cloud's side of the delivery feed in memory, with the server's rules: claims with a TTL and a fencing token,
 * expired claims back to pending, backoff computed here (or the provider's Retry-After), the attempt cap enforced
 * here. For gateway unit tests; the real feed is tested against the web role.
 */
export interface MemoryDelivery {
  id: string
  channelBindingId: string
  providerId: string
  providerKind: ProviderKind
  target: string
  text: string
  idempotencyKey: string
  status: "pending" | "claimed" | "sent" | "failed" | "dead"
  attempts: number
  nextAttemptAt: number
  claimToken: string | null
  claimExpiresAt: number
  lastClaimedBy: string | null
  lastError: string | null
  createdAt: number
}

export class MemoryCloud {
  readonly deliveries = new Map<string, MemoryDelivery>()
  /** Signature replay keys: `claimed` while a request is handled, `completed` once it was. */
  readonly replayKeys = new Map<string, "claimed" | "completed">()
  /** The next `inbound` calls that fail as a cloud answering 503. */
  failInbound = 0
  readonly providerEvents = new Set<string>()
  readonly prompts: Array<{ providerId: string; message: InboundMessage }> = []
  readonly statusReports: Array<{ providerId: string; status: string }> = []
  /** `credentialRef` per binding (absent: none). */
  readonly credentialRefs = new Map<string, string>()
  /** `inboundCredentialRef` per binding (absent: none), and each such binding's provider id. */
  readonly inboundCredentialRefs = new Map<string, string>()
  readonly bindingProviders = new Map<string, string>()
  /** `externalTarget` per binding (absent: the binding's id, as a webhook names it). */
  readonly bindingTargets = new Map<string, string>()
  readonly bindingReports: Array<{ channelBindingId: string; status: string; detail: string | null }> = []
  readonly bindings: ReadonlyArray<string>
  /** The org every binding here belongs to (the namespace a `credentialRef` resolves in). */
  readonly orgId: string
  /** Failed acks the cloud refused because the claim had moved on. */
  staleAcks = 0
  /** The size of every ack request made, in order (each carries a batch). */
  readonly ackBatches: Array<number> = []
  /** While set, ack requests wait for it (a slow cloud); they are counted in `ackBatches` when they arrive. */
  ackGate: Promise<void> | undefined
  /** While set, inbound messages wait for it before the cloud handles them (a slow cloud). */
  inboundGate: Promise<void> | undefined
  /** Inbound messages waiting on `inboundGate` now. */
  inboundWaiting = 0
  private next = 1
  private readonly wake = Effect.runSync(PubSub.unbounded<void>())
  readonly maxAttempts: number
  readonly baseBackoffMs: number

  constructor(
    options: { readonly bindings?: ReadonlyArray<string>; readonly maxAttempts?: number; readonly baseBackoffMs?: number; readonly orgId?: string } = {}
  ) {
    this.bindings = options.bindings ?? ["chb_1"]
    this.orgId = options.orgId ?? "org_gateway_test"
    this.maxAttempts = options.maxAttempts ?? 5
    this.baseBackoffMs = options.baseBackoffMs ?? 20
  }

  add(fields: Pick<MemoryDelivery, "providerId" | "providerKind" | "target" | "text"> & { channelBindingId?: string }): MemoryDelivery {
    const id = `dlv_${this.next++}`
    const delivery: MemoryDelivery = {
      channelBindingId: this.bindings[0]!,
      ...fields,
      id,
      idempotencyKey: `key-${id}`,
      status: "pending",
      attempts: 0,
      nextAttemptAt: 0,
      claimToken: null,
      claimExpiresAt: 0,
      lastClaimedBy: null,
      lastError: null,
      createdAt: Date.now()
    }
    this.deliveries.set(id, delivery)
    Effect.runSync(PubSub.publish(this.wake, undefined))
    return delivery
  }

  private view(d: MemoryDelivery): DeliveryView {
    return {
      id: d.id,
      channelBindingId: d.channelBindingId,
      status: d.status,
      attempts: d.attempts,
      nextAttemptAt: d.status === "pending" || d.status === "failed" ? new Date(d.nextAttemptAt).toISOString() : null,
      lastClaimedBy: d.lastClaimedBy,
      lastError: d.lastError,
      idempotencyKey: d.idempotencyKey,
      createdAt: new Date(d.createdAt).toISOString()
    }
  }

  /**
   * Whether an inbound message reaches a binding here, by the gateway's rule (`InboundBinding`: a binding's own secret
   * reaches that binding only; the provider's secret no binding that has its own). A target that names no binding
   * here counts as bound (the memory cloud routes any chat), unless the message came via a binding's own secret.
   */
  admits(providerId: string, target: string, viaBinding: string | undefined): boolean {
    const views: Array<InboundBindingView> = [...new Set([...this.bindings, ...this.bindingProviders.keys()])].map((id) => ({
      id,
      providerId: this.bindingProviders.get(id) ?? providerId,
      externalTarget: this.bindingTargets.get(id) ?? id,
      inboundCredentialRef: this.inboundCredentialRefs.get(id) ?? null
    }))
    const candidate = views.find(inboundCandidate(providerId, target, viaBinding))
    if (candidate === undefined) return viaBinding === undefined
    return admittedBinding(candidate, target, viaBinding) !== undefined
  }

  layer(gatewayTokenId = "tok_gateway"): Layer.Layer<CloudChannels> {
    const self = this
    const live = (delivery: ClaimedDelivery) => {
      const row = self.deliveries.get(delivery.id)
      return row !== undefined && row.status === "claimed" && row.claimToken === delivery.claimToken && row.claimExpiresAt > Date.now() ? row : undefined
    }
    const ackOne = (delivery: ClaimedDelivery, outcome: AckOutcome): AckResult | ClaimLost => {
      const row = live(delivery)
      if (row === undefined) {
        self.staleAcks++
        return new ClaimLost({ deliveryId: delivery.id })
      }
      row.claimToken = null
      if (outcome.status === "sent") {
        row.status = "sent"
        return { status: "sent" }
      }
      row.lastError = outcome.error
      if (outcome.status === "dead" || row.attempts >= self.maxAttempts) {
        row.status = "dead"
        return { status: "dead" }
      }
      row.status = "failed"
      const backoff = Math.min(self.baseBackoffMs * 2 ** (row.attempts - 1), 60_000)
      row.nextAttemptAt = Date.now() + Math.max(backoff, outcome.retryAfterMs ?? 0)
      return { status: "pending", nextAttemptAt: new Date(row.nextAttemptAt).toISOString() }
    }
  const inbound = (providerId: string, message: InboundMessage, viaBinding: string | undefined) =>
      Effect.suspend(() => {
        if (self.failInbound > 0) {
          self.failInbound--
          return Effect.fail(new CloudUnavailable({ message: "ResponseError 503: draining", status: 503 }))
        }
        return Effect.succeed(undefined)
      }).pipe(Effect.map(() => {
        if (!self.admits(providerId, message.externalTarget, viaBinding)) return { status: "unbound" as const }
        const id = `${providerId}:${message.providerEventId}`
        if (self.providerEvents.has(id)) return { status: "duplicate" as const }
        self.providerEvents.add(id)
        self.prompts.push({ providerId, message })
        return { status: "prompted" as const, sessionId: "ses_memory" }
      }))
    return Layer.succeed(CloudChannels, CloudChannels.of({
      whoami: Effect.succeed({
        scope: "gateway",
        tokenId: gatewayTokenId,
        channelBindingIds: self.bindings,
        listAllowed: true,
        retryAllowed: true,
        deadLetterAllowed: true
      }),
      claim: (limit, ttlMs) =>
        Effect.sync(() => {
          const now = Date.now()
          const claimed: Array<ClaimedDelivery> = []
          for (const row of self.deliveries.values()) {
            if (claimed.length >= limit) break
            if (row.status === "claimed" && row.claimExpiresAt <= now) {
              row.status = row.attempts >= self.maxAttempts ? "dead" : "pending"
            }
            const due = (row.status === "pending" || row.status === "failed") && row.nextAttemptAt <= now
            if (!due || !self.bindings.includes(row.channelBindingId)) continue
            row.status = "claimed"
            row.attempts++
            row.claimToken = `${row.id}:${row.attempts}`
            row.claimExpiresAt = now + ttlMs
            row.lastClaimedBy = gatewayTokenId
            claimed.push({
              id: row.id,
              channelBindingId: row.channelBindingId,
              providerId: row.providerId,
              providerKind: row.providerKind,
              target: row.target,
              eventType: "assistant.message",
              text: row.text,
              idempotencyKey: row.idempotencyKey,
              attempt: row.attempts,
              claimToken: row.claimToken,
              committedAt: new Date(row.createdAt).toISOString()
            })
          }
          return claimed
        }),
      renew: (delivery, ttlMs) =>
        Effect.suspend(() => {
          const row = live(delivery)
          if (row === undefined) return Effect.fail(new ClaimLost({ deliveryId: delivery.id }))
          row.claimExpiresAt = Date.now() + ttlMs
          return Effect.void
        }),
      ack: (acks) =>
        Effect.promise(() => {
          self.ackBatches.push(acks.length)
          return self.ackGate ?? Promise.resolve()
        }).pipe(Effect.map(() => acks.map(({ delivery, outcome }) => ackOne(delivery, outcome)))),
      wakeups: Stream.concat(Stream.make(undefined), Stream.fromPubSub(self.wake)),
      claimSignature: (providerId, key) =>
        Effect.sync((): SignatureClaim => {
          const id = `${providerId}:${key}`
          const state = self.replayKeys.get(id)
          if (state === "completed") return { status: "replayed" }
          if (state === "claimed") return { status: "in_progress" }
          self.replayKeys.set(id, "claimed")
          return {
            status: "claimed",
            settle: (handled) => Effect.sync(() => void (handled ? self.replayKeys.set(id, "completed") : self.replayKeys.delete(id)))
          }
        }),
      inbound: (providerId, _kind, message, viaBinding) => inbound(providerId, message, viaBinding),
      message: (providerId, message, replayKey, viaBinding) =>
        Effect.gen(function*() {
          // As the cloud's one-request inbound: the signature's replay key, then the provider event and the prompt.
          const key = replayKey === undefined ? undefined : `${providerId}:${replayKey}`
          const state = key === undefined ? undefined : self.replayKeys.get(key)
          if (state === "completed") return { status: "replayed" as const }
          if (state === "claimed") return { status: "in_progress" as const }
          if (self.inboundGate !== undefined) {
            self.inboundWaiting++
            yield* Effect.promise(() => self.inboundGate!).pipe(Effect.ensuring(Effect.sync(() => self.inboundWaiting--)))
          }
          const result = yield* inbound(providerId, message, viaBinding)
          if (key !== undefined && result.status !== "unbound") self.replayKeys.set(key, "completed")
          return result
        }),
      mayAnswer: (providerId, message, viaBinding) =>
        Effect.succeed<AnswerAdmission>(self.admits(providerId, message.externalTarget, viaBinding) ? { status: "admitted" } : { status: "unbound" }),
      reportProviderStatus: (providerId, status) => Effect.sync(() => void self.statusReports.push({ providerId, status })),
      credentialRef: (channelBindingId, use = "outbound") =>
        Effect.sync(() => {
          const credentialRef = (use === "outbound" ? self.credentialRefs : self.inboundCredentialRefs).get(channelBindingId)
          return credentialRef === undefined ? null : { orgId: self.orgId, credentialRef, providerId: self.bindingProviders.get(channelBindingId) ?? "" }
        }),
      reportBindingStatus: (channelBindingId, status, detail) => Effect.sync(() => void self.bindingReports.push({ channelBindingId, status, detail })),
      listDeliveries: (query) =>
        Effect.sync(() =>
          [...self.deliveries.values()]
            .filter((d) => self.bindings.includes(d.channelBindingId))
            .filter((d) => query.status === undefined || d.status === query.status)
            .filter((d) => query.channelBindingId === undefined || d.channelBindingId === query.channelBindingId)
            .slice(0, query.limit ?? 100)
            .map((d) => self.view(d))
        ),
      retry: (id) =>
        Effect.suspend(() => {
          const row = self.deliveries.get(id)
          if (row === undefined || row.lastClaimedBy !== gatewayTokenId) return Effect.fail(new DeliveryNotFound({ deliveryId: id }))
          row.status = "pending"
          row.attempts = 0
          row.nextAttemptAt = 0
          Effect.runSync(PubSub.publish(self.wake, undefined))
          return Effect.succeed(self.view(row))
        }),
      deadLetter: (id) =>
        Effect.suspend(() => {
          const row = self.deliveries.get(id)
          if (row === undefined || row.lastClaimedBy !== gatewayTokenId) return Effect.fail(new DeliveryNotFound({ deliveryId: id }))
          row.status = "dead"
          return Effect.succeed(self.view(row))
        })
    }))
  }
}
