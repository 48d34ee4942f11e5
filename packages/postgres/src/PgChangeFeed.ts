import { ChangeFeed, type CommandSignal, type ListenerState, type Resync } from "@cowork/services"
import { PgClient } from "@effect/sql-pg"
import { Clock, Deferred, Duration, Effect, Layer, PubSub, Queue, Random, Result, Semaphore, Stream } from "effect"
import {
  COMMANDS_CHANNEL,
  type CommandsMessage,
  EVENTS_CHANNEL,
  type EventsMessage,
  formatCommandSignal,
  parseCommandsMessage,
  parseEventsMessage
} from "./Channels.ts"
import { listen, LISTEN_TIMEOUT } from "./ListenConnection.ts"

/** A self-addressed probe: proves the listening connection still delivers notifications end to end. */
const PING_PREFIX = "~ping "

export interface ChangeFeedOptions {
  /**
   * How often the listening connection is probed with a self-notification when it received nothing else meanwhile
   * (any notification proves the connection works, so a busy channel is never probed).
   */
  readonly healthCheckInterval: Duration.Input
  /** How long a probe may take before the connection is considered dead and re-established. */
  readonly healthCheckTimeout: Duration.Input
}

const defaultOptions: ChangeFeedOptions = { healthCheckInterval: "2 minutes", healthCheckTimeout: "10 seconds" }

class ListenerUnhealthy {
  readonly _tag = "ListenerUnhealthy"
}

/** First reconnect delay after the listening connection fails; doubles per failed attempt up to the maximum. */
export const RECONNECT_BASE_MS = 100
/** Longest wait between reconnect attempts: a database that is back is listened to again within about this long. */
export const RECONNECT_MAX_MS = 1_000


/** The delay before reconnect attempt `attempt` (0-based): bounded exponential, jittered to 80-120%. */
const reconnectDelay = (attempt: number) =>
  Effect.map(Random.nextBetween(0.8, 1.2), (jitter) =>
    Duration.millis(Math.round(Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 16)) * jitter)))

/**
 * ONE `LISTEN` connection per channel per process, started on first subscription and shared by every subscriber
 * through an in-memory `PubSub`. The connection is probed periodically and re-established with a bounded, jittered
 * backoff when it fails (reset once a connection works). Each re-established connection is announced on `resyncs`
 * AFTER its `LISTEN` is active, so a subscriber's catch-up read there covers every notification lost meanwhile. A
 * subscription returns once the channel's first connection attempt is over (LISTEN_TIMEOUT at most), so a notification
 * sent after it returns reaches it (or, when that attempt failed or took longer, the connection that follows is
 * announced on `resyncs`).
 */
export const make = (options: ChangeFeedOptions = defaultOptions) =>
  Effect.gen(function*() {
    const pg = yield* PgClient.PgClient
    const layerScope = yield* Effect.scope
    const states = new Map<string, { connected: boolean }>()
    const resyncHub = yield* PubSub.unbounded<Resync>()

    const channel = <A>(name: string, parse: (payload: string) => A | undefined) =>
      Effect.gen(function*() {
        const pubsub = yield* PubSub.unbounded<A>()
        const started = Semaphore.makeUnsafe(1)
        let running = false

        const state = { connected: false }
        let everConnected = false
        let lostAt = 0
        // Completed by the channel's first connection attempt, whether its LISTEN is active or it failed.
        const firstAttempt = yield* Deferred.make<void>()
        let startedAt = 0
        let firstAttemptFailed = false
        let connectedThisTime = false
        const listenOnce = Effect.scoped(Effect.gen(function*() {
          // A connect into a restarting server can hang until the connect timeout; give up sooner and retry.
          const notifications = yield* listen(pg, name).pipe(
            Effect.timeoutOrElse({ duration: LISTEN_TIMEOUT, orElse: () => Effect.fail(new ListenerUnhealthy()) })
          )
          state.connected = true
          connectedThisTime = true
          yield* Effect.addFinalizer(() =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              state.connected = false
              lostAt = now
            })
          )
          // Re-established, or established after a first attempt that failed or that subscribers stopped waiting for.
          if (everConnected || firstAttemptFailed) {
            yield* PubSub.publish(resyncHub, { channel: name, lostAt: everConnected ? lostAt : startedAt })
          }
          everConnected = true
          yield* Deferred.succeed(firstAttempt, undefined)
          yield* Effect.logDebug("change feed listening").pipe(Effect.annotateLogs({ channel: name }))
          let pending: { readonly nonce: string; readonly received: Deferred.Deferred<void> } | undefined
          let heardAt = yield* Clock.currentTimeMillis
          const intervalMs = Duration.toMillis(Duration.fromInputUnsafe(options.healthCheckInterval))
          const probe = Effect.gen(function*() {
            // Something arrived within the interval: the connection delivers, no probe needed.
            if ((yield* Clock.currentTimeMillis) - heardAt < intervalMs) return
            const nonce = globalThis.crypto.randomUUID()
            const received = yield* Deferred.make<void>()
            pending = { nonce, received }
            yield* pg.notify(name, `${PING_PREFIX}${nonce}`)
            yield* Deferred.await(received).pipe(
              Effect.timeoutOrElse({ duration: options.healthCheckTimeout, orElse: () => Effect.fail(new ListenerUnhealthy()) })
            )
          }).pipe(Effect.delay(options.healthCheckInterval), Effect.forever)
          const consume = Effect.gen(function*() {
            while (true) {
              const notification = yield* Queue.take(notifications)
              if (notification.payload.startsWith(PING_PREFIX)) {
                if (pending !== undefined && notification.payload === `${PING_PREFIX}${pending.nonce}`) {
                  yield* Deferred.succeed(pending.received, undefined)
                }
                continue
              }
              heardAt = yield* Clock.currentTimeMillis
              const parsed = parse(notification.payload)
              if (parsed !== undefined) yield* PubSub.publish(pubsub, parsed)
            }
          })
          return yield* Effect.raceFirst(consume, probe)
        }))

        const start = started.withPermits(1)(Effect.suspend(() => {
          if (running) return Effect.void
          running = true
          states.set(name, state)
          let attempt = 0
          const supervised = Effect.gen(function*() {
            connectedThisTime = false
            const exit = yield* Effect.exit(listenOnce)
            if (!everConnected) firstAttemptFailed = true
            yield* Deferred.succeed(firstAttempt, undefined)
            if (connectedThisTime) attempt = 0
            const delay = yield* reconnectDelay(attempt++)
            yield* Effect.logWarning("change feed connection lost; re-establishing").pipe(
              Effect.annotateLogs({ channel: name, error: String(exit), retry_in_ms: Duration.toMillis(delay) })
            )
            yield* Effect.sleep(delay)
          })
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            startedAt = now
            return Effect.forever(supervised).pipe(Effect.forkIn(layerScope), Effect.asVoid)
          })
        }))

        // The subscription is returned once the channel's first connection attempt is over, waiting LISTEN_TIMEOUT at
        // most (a subscriber, often a layer being built, never hangs on the listener): when its `LISTEN` is active,
        // every notification sent after the subscription returns reaches it (one sent while the connection was still
        // being opened would be lost); otherwise the connection that follows is announced on `resyncs` from the moment
        // the channel started.
        return Effect.gen(function*() {
          const subscription = yield* PubSub.subscribe(pubsub)
          yield* start
          const waited = yield* Effect.timeoutOption(Deferred.await(firstAttempt), LISTEN_TIMEOUT)
          if (waited._tag === "None" && !everConnected) firstAttemptFailed = true
          return Stream.fromSubscription(subscription)
        })
      })

    // Session changes and revocations share one channel, so a web process holds ONE listening connection.
    const events = yield* channel(EVENTS_CHANNEL, parseEventsMessage)
    const sessionChanges = Effect.map(events, Stream.filterMap((message: EventsMessage) =>
      "session" in message ? Result.succeed(message.session) : Result.failVoid))
    const revocations = Effect.map(events, Stream.filterMap((message: EventsMessage) =>
      "revocation" in message ? Result.succeed(message.revocation) : Result.failVoid))
    // Command signals and workflow changes share one channel, so `cowork up` holds ONE commands listener.
    const commands = yield* channel(COMMANDS_CHANNEL, parseCommandsMessage)
    const commandSignals = Effect.map(commands, Stream.filterMap((message: CommandsMessage) =>
      "signal" in message ? Result.succeed(message.signal) : Result.failVoid))
    const workflowChanges = Effect.map(commands, Stream.filterMap((message: CommandsMessage) =>
      "workflow" in message ? Result.succeed<void>(undefined) : Result.failVoid))

    const notifyCommand = Effect.fn("ChangeFeed.notifyCommand")(function*(signal: CommandSignal) {
      yield* pg.notify(COMMANDS_CHANNEL, formatCommandSignal(signal)).pipe(Effect.orDie)
    })

    const resyncs = Effect.map(PubSub.subscribe(resyncHub), Stream.fromSubscription)

    const listeners = Effect.sync(() =>
      [...states].map(([channel, state]): ListenerState => ({ channel, connected: state.connected }))
    )

    return ChangeFeed.of({ sessionChanges, commandSignals, notifyCommand, revocations, workflowChanges, listeners, resyncs })
  })

export const layer = Layer.effect(ChangeFeed, make())
export const layerWith = (options: ChangeFeedOptions) => Layer.effect(ChangeFeed, make(options))

