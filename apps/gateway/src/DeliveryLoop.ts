import type { OutboundMessage, SendOutcome } from "@cowork/channels"
import { Metrics } from "@cowork/observability"
import { MAX_ACKS_PER_BATCH } from "@cowork/domain"
import { Cause, Clock, Deferred, Duration, Effect, Fiber, FiberSet, Option, Queue, Ref, Schedule, Semaphore, Stream } from "effect"
import { BindingCredentials } from "./BindingCredentials.ts"
import { type AckOutcome, type AckResult, ClaimLost, type ClaimedDelivery, CloudChannels, type CloudUnavailable, type PendingAck } from "./CloudChannels.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { GatewayState } from "./GatewayState.ts"
import { Providers } from "./Providers.ts"

const toAck = (outcome: SendOutcome): AckOutcome => {
  switch (outcome._tag) {
    case "Sent":
      return { status: "sent" }
    case "Failed":
      return { status: "failed", error: outcome.error, retryAfterMs: outcome.retryAfterMs }
    case "Dead":
      return { status: "dead", error: outcome.error }
  }
}

const toMessage = (delivery: ClaimedDelivery): OutboundMessage => ({
  idempotencyKey: delivery.idempotencyKey,
  target: delivery.target,
  threadId: delivery.threadId,
  text: delivery.text,
  eventType: delivery.eventType,
  payload: delivery.payload,
  buttons: delivery.buttons
})

/**
 * The delivery loop: wake on the cloud's push stream (or the backstop poll), claim what is due, send at most
 * `concurrency` at once, and ack with each claim's fencing token. A delivery's claim is renewed every third of the TTL
 * from the claim until its provider call ends. The provider call alone takes a send slot: outcomes are acked in
 * batches (one request for all that finished meanwhile, `MAX_ACKS_PER_BATCH` at most), so a slow cloud does not
 * hold send slots, and each claim asks for the free room (up to `claimBatch`) while the last ones are still acking.
 * What this gateway holds (claimed, not acked yet) is bounded: `concurrency + claimBatch` not yet sent, and
 * `concurrency + claimBatch + MAX_ACKS_PER_BATCH` in all. The server owns backoff and the attempt cap; a refused ack
 * (the claim expired and someone else may hold it) is counted and dropped. On shutdown: stop claiming, let sends and
 * acks in flight finish within the grace.
 */
export const run = Effect.gen(function*() {
  const cloud = yield* CloudChannels
  const config = yield* GatewayConfig
  const providers = yield* Providers
  const credentials = yield* BindingCredentials
  const metrics = yield* Metrics
  const state = yield* GatewayState
  const wake = yield* Queue.sliding<void>(1)
  const requestWake = Queue.offer(wake, undefined).pipe(Effect.asVoid)
  const sends = yield* FiberSet.make<void, never>()
  let peak = 0

  const countError = (operation: "claim" | "renew" | "ack" | "stale_claim" | "send" | "stream" | "credential") =>
    metrics.inc("open_cowork_gateway_errors_total", { operation })

  /** Outcomes waiting for the next ack batch; each is answered through its deferred. */
  const acks = yield* Queue.unbounded<{ readonly pending: PendingAck; readonly done: Deferred.Deferred<AckResult | ClaimLost, CloudUnavailable> }>()
  /** The provider calls running at once. */
  const sendSlots = yield* Semaphore.make(config.concurrency)
  /** Claimed, provider call not finished yet (the claim loop keeps this at most `concurrency + claimBatch`). */
  let unsent = 0
  const maxUnsent = config.concurrency + config.claimBatch
  const maxHeld = maxUnsent + MAX_ACKS_PER_BATCH

  /** One ack request for everything waiting; an unanswered request is retried (a sent delivery whose ack is lost would be sent again). */
  const ackBatch = Effect.gen(function*() {
    const batch = yield* Queue.takeBetween(acks, 1, MAX_ACKS_PER_BATCH)
    const answered = yield* cloud.ack(batch.map((entry) => entry.pending)).pipe(
      Effect.tapError(() => countError("ack")),
      Effect.retry({ schedule: Schedule.exponential("100 millis").pipe(Schedule.jittered), times: 6 }),
      Effect.exit
    )
    yield* Effect.forEach(batch, (entry, i) =>
      answered._tag === "Success"
        ? Deferred.succeed(entry.done, answered.value[i] ?? new ClaimLost({ deliveryId: entry.pending.delivery.id }))
        : Deferred.failCause(entry.done, answered.cause), { discard: true })
  })

  const acked = (delivery: ClaimedDelivery, outcome: AckOutcome) =>
    Effect.gen(function*() {
      const done = yield* Deferred.make<AckResult | ClaimLost, CloudUnavailable>()
      yield* Queue.offer(acks, { pending: { delivery, outcome }, done })
      const answer = yield* Deferred.await(done)
      return answer instanceof ClaimLost ? yield* answer : answer
    })

  /** A binding's own credential refused (or working again): the binding's status in the cloud, reported on a change. */
  const bindingReported = new Map<string, "active" | "auth_required" | "error">()
  const reportBinding = (channelBindingId: string, status: "active" | "auth_required" | "error", detail: string | null) =>
    bindingReported.get(channelBindingId) === status || (status === "active" && !bindingReported.has(channelBindingId))
      ? Effect.void
      : cloud.reportBindingStatus(channelBindingId, status, detail).pipe(
        Effect.tap(() => Effect.sync(() => bindingReported.set(channelBindingId, status))),
        Effect.catchTag("CloudUnavailable", () => Effect.void)
      )

  /** The provider for this delivery: the configured one, or one with the binding's own credential (`credentialRef`). */
  const providerOf = (delivery: ClaimedDelivery) =>
    credentials.providerFor(delivery.providerId, delivery.channelBindingId).pipe(
      Effect.map((bound) =>
        bound === undefined
          ? { _tag: "Unusable" as const, error: `provider ${delivery.providerId} is not configured on gateway ${config.gatewayId}` }
          : { _tag: "Usable" as const, bound }
      ),
      Effect.catchTag("CredentialUnresolved", (error) =>
        Effect.gen(function*() {
          yield* countError("credential")
          yield* Effect.logWarning("binding credential not resolved").pipe(Effect.annotateLogs({ channel_binding_id: delivery.channelBindingId, error: error.message }))
          yield* reportBinding(delivery.channelBindingId, "error", error.message)
          return { _tag: "Unusable" as const, error: error.message }
        })),
      Effect.catchTag("CloudUnavailable", (error) => Effect.succeed({ _tag: "Unusable" as const, error: `binding credential: ${error.message}` }))
    )

  /** The provider call for one claimed delivery (in a send slot) and its outcome. */
  const send = (delivery: ClaimedDelivery) =>
    Effect.gen(function*() {
      const resolved = yield* providerOf(delivery)
      if (resolved._tag === "Unusable") return { _tag: "Failed", error: resolved.error } satisfies SendOutcome as SendOutcome
      const { provider, own } = resolved.bound
      const outcome = yield* provider.send(toMessage(delivery))
      if (outcome._tag === "Dead" && outcome.targetRefused === true) {
        // The binding's target may not be reached (a webhook URL to a non-public address): the binding's error.
        yield* reportBinding(delivery.channelBindingId, "error", outcome.error)
      } else if (!own) {
        yield* providers.record(delivery.providerId, outcome)
        if (outcome._tag === "Sent") yield* reportBinding(delivery.channelBindingId, "active", null)
      } else if (outcome._tag === "Dead" && outcome.authFailed) {
        // The binding's own credential was refused: the binding (not the shared provider) needs attention.
        yield* reportBinding(delivery.channelBindingId, "auth_required", outcome.error)
      } else if (outcome._tag === "Sent") {
        yield* reportBinding(delivery.channelBindingId, "active", null)
      }
      if (outcome._tag !== "Sent") yield* countError("send")
      return outcome
    })

  const sendOne = (delivery: ClaimedDelivery) =>
    Effect.gen(function*() {
      const labels = { provider_id: delivery.providerId, provider_kind: delivery.providerKind }
      // Renewed every third of the TTL from the claim until the provider call ends (a wait for a send slot included);
      // a lost claim is counted, the ack will be refused.
      const renewal = yield* Effect.forkChild(
        cloud.renew(delivery, config.claimTtlMs).pipe(
          Effect.delay(`${Math.max(1, Math.floor(config.claimTtlMs / 3))} millis`),
          Effect.forever,
          Effect.catchTag("ClaimLost", () => countError("stale_claim")),
          Effect.catchTag("CloudUnavailable", () => countError("renew"))
        )
      )
      const outcome = yield* sendSlots.withPermits(1)(send(delivery)).pipe(
        Effect.ensuring(Effect.andThen(Fiber.interrupt(renewal), Effect.sync(() => {
          unsent--
        }))),
        Effect.ensuring(requestWake)
      )
      const result: AckResult | undefined = yield* acked(delivery, toAck(outcome)).pipe(
        Effect.catchTag("ClaimLost", () =>
          Effect.andThen(countError("stale_claim"), Effect.logWarning("delivery ack refused: the claim expired").pipe(
            Effect.annotateLogs({ delivery_id: delivery.id, attempt: delivery.attempt }),
            Effect.as(undefined)
          ))),
        Effect.catchTag("CloudUnavailable", (error) =>
          Effect.logError("delivery ack failed; the claim will expire and the delivery be retried").pipe(
            Effect.annotateLogs({ delivery_id: delivery.id, error: error.message }),
            Effect.as(undefined)
          ))
      )
      if (result === undefined) return
      if (result.status === "sent") {
        yield* metrics.inc("open_cowork_gateway_deliveries_sent_total")
        yield* metrics.inc("open_cowork_gateway_provider_deliveries_sent_total", labels)
        const committed = Date.parse(delivery.committedAt)
        if (!Number.isNaN(committed)) yield* metrics.observe("open_cowork_gateway_delivery_latency_ms", Math.max(0, (yield* Clock.currentTimeMillis) - committed))
      } else if (result.status === "pending") {
        yield* metrics.inc("open_cowork_gateway_delivery_retries_total")
        yield* metrics.inc("open_cowork_gateway_provider_delivery_retries_total", labels)
      } else {
        yield* metrics.inc("open_cowork_gateway_delivery_dead_letters_total")
        yield* metrics.inc("open_cowork_gateway_provider_delivery_dead_letters_total", labels)
        yield* Effect.logWarning("delivery dead-lettered").pipe(
          Effect.annotateLogs({ delivery_id: delivery.id, attempt: delivery.attempt, provider_id: delivery.providerId })
        )
      }
    }).pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.interrupt : Effect.logError("delivery send failed", cause)
      ),
      Effect.ensuring(Effect.andThen(Ref.update(state.inFlight, (n) => n - 1), requestWake))
    )

  /** Claims until nothing more is due or this gateway holds all it may (not yet sent, and in all). */
  const claimRound = Effect.gen(function*() {
    while (!(yield* Ref.get(state.draining))) {
      const held = yield* Ref.get(state.inFlight)
      const wanted = Math.min(config.claimBatch, maxUnsent - unsent, maxHeld - held)
      if (wanted <= 0) return
      const claimed = yield* cloud.claim(wanted, config.claimTtlMs).pipe(
        Effect.tap(() => Ref.update(state.feed, (feed) => ({ ...feed, lastClaimOk: true, lastError: null }))),
        Effect.catchTag("CloudUnavailable", (error) =>
          Effect.gen(function*() {
            yield* countError("claim")
            yield* Ref.update(state.feed, (feed) => ({ ...feed, lastClaimOk: false, lastError: error.message }))
            yield* Effect.logWarning("delivery claim failed").pipe(Effect.annotateLogs({ error: error.message }))
            return []
          }))
      )
      if (claimed.length === 0) return
      yield* metrics.inc("open_cowork_gateway_deliveries_received_total", claimed.length)
      const inFlight = yield* Ref.updateAndGet(state.inFlight, (n) => n + claimed.length)
      unsent += claimed.length
      peak = Math.max(peak, inFlight)
      yield* metrics.set("open_cowork_gateway_delivery_queue_depth_max", peak)
      for (const delivery of claimed) yield* FiberSet.run(sends, sendOne(delivery))
      if (claimed.length < wanted) return
    }
  })

  // The acker: one batch at a time, each of what finished while the last one was answered.
  yield* Effect.forkScoped(Effect.forever(ackBatch))

  yield* Effect.forkScoped(
    Effect.gen(function*() {
      yield* Queue.take(wake)
      peak = yield* Ref.get(state.inFlight)
      yield* claimRound
    }).pipe(Effect.forever)
  )

  // The backstop poll: a missed push (or no push stream) delays a delivery by at most this interval.
  yield* Effect.forkScoped(requestWake.pipe(Effect.repeat(Schedule.spaced(`${config.pollIntervalMs} millis`))))

  // The push stream: every element wakes the claim loop; a dropped stream is reopened with backoff.
  let opened = 0
  yield* Effect.forkScoped(
    Effect.scoped(Effect.gen(function*() {
      if (opened++ > 0) yield* metrics.inc("open_cowork_gateway_stream_reconnects_total")
      yield* metrics.hold("open_cowork_gateway_session_streams")
      yield* cloud.wakeups.pipe(
        Stream.runForEach(() =>
          Effect.andThen(Ref.update(state.feed, (feed) => ({ ...feed, streamConnected: true })), requestWake)
        )
      )
    })).pipe(
      Effect.catchTag("CloudUnavailable", (error) =>
        Effect.andThen(countError("stream"), Ref.update(state.feed, (feed) => ({ ...feed, lastError: error.message })))),
      Effect.andThen(Ref.update(state.feed, (feed) => ({ ...feed, streamConnected: false }))),
      Effect.repeat(Schedule.exponential("200 millis").pipe(
        Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5)))),
        Schedule.jittered
      ))
    )
  )

  // Added last, so it runs first on shutdown: stop claiming, then wait for the sends in flight.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Ref.set(state.draining, true)
      const active = yield* Ref.get(state.inFlight)
      yield* Effect.logInfo("gateway draining").pipe(Effect.annotateLogs({ in_flight: active, grace_ms: config.shutdownGraceMs }))
      const finished = yield* FiberSet.awaitEmpty(sends).pipe(Effect.timeoutOption(config.shutdownGraceMs))
      if (Option.isNone(finished)) {
        yield* Effect.logWarning("shutdown grace elapsed; unfinished deliveries go back to the feed when their claims expire")
      }
      yield* Effect.logInfo("gateway drained")
    })
  )
  yield* requestWake
})
