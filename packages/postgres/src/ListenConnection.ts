import type { ListenerState, Resync } from "@cowork/services"
import { PgClient, PgConnection } from "@effect/sql-pg"
import { Clock, Context, Deferred, Duration, Effect, Layer, PubSub, Queue, Random, Scope, Semaphore, Stream } from "effect"

/**
 * How long establishing a listening connection (connect + `LISTEN`) may take before it is retried, and how long a
 * subscription waits for its channel's first one.
 */
const LISTEN_TIMEOUT = Duration.seconds(3)

/** First reconnect delay after the listening connection fails; doubles per failed attempt up to the maximum. */
const RECONNECT_BASE_MS = 100
/** Longest wait between reconnect attempts: a database that is back is listened to again within about this long. */
const RECONNECT_MAX_MS = 1_000

/** A self-addressed probe: proves the listening connection still delivers notifications end to end. */
const PING_PREFIX = "~ping "

export interface ListenOptions {
  /**
   * How often the listening connection is probed with a self-notification when it received nothing else meanwhile
   * (any notification proves the connection works, so a busy connection is never probed).
   */
  readonly healthCheckInterval: Duration.Input
  /** How long a probe may take before the connection is considered dead and re-established. */
  readonly healthCheckTimeout: Duration.Input
}

const defaultListenOptions: ListenOptions = { healthCheckInterval: "2 minutes", healthCheckTimeout: "10 seconds" }

class ListenerUnhealthy {
  readonly _tag = "ListenerUnhealthy"
}

/** The delay before reconnect attempt `attempt` (0-based): bounded exponential, jittered to 80-120%. */
const reconnectDelay = (attempt: number) =>
  Effect.map(Random.nextBetween(0.8, 1.2), (jitter) =>
    Duration.millis(Math.round(Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 16)) * jitter)))

interface ChannelState {
  readonly name: string
  readonly payloads: PubSub.PubSub<string>
  /** Completed by the channel's first `LISTEN` attempt, whether it is active or failed. */
  readonly firstAttempt: Deferred.Deferred<void>
  readonly startedAt: number
  connected: boolean
  everConnected: boolean
  firstAttemptFailed: boolean
  lostAt: number
}

/**
 * The process's ONE listening connection (Postgres signals every listening backend of the database at each
 * `NOTIFY` commit, whatever the channel: one backend per process, not one per channel). Every channel a subscriber
 * asks for is `LISTEN`ed on it, and its notifications are dispatched by channel to that channel's subscribers.
 *
 * Never a pooled connection (`PgClient.listen` reserves one for as long as it listens): the pool does not grow when
 * a connection it just handed out is reserved, so a borrower asleep in its queue at that moment was never woken and
 * every later borrower queued behind it. A listener outside the pool also leaves all of `maxConnections` to queries.
 *
 * The connection starts with the first subscription, is probed with a self-notification when it has heard nothing
 * for `healthCheckInterval`, and is re-established with a bounded, jittered backoff when it fails (every channel
 * `LISTEN`ed again). Each channel listened again is announced on `resyncs` AFTER its `LISTEN` is active, so a catch-up
 * read there covers every notification lost meanwhile. A subscription returns once its channel's first `LISTEN` attempt
 * is over (LISTEN_TIMEOUT at most): when it is active, every notification sent after the subscription returns reaches
 * it; otherwise the connection that follows announces the channel on `resyncs` from the moment it was first asked for.
 */
export class ListenHub extends Context.Service<ListenHub, {
  /** `channel`'s payloads (self-probes left out), from when this returns. */
  readonly subscribe: (channel: string) => Effect.Effect<Stream.Stream<string>, never, Scope.Scope>
  /** Channels listened to again after the connection was re-established (or first established late). */
  readonly resyncs: Effect.Effect<Stream.Stream<Resync>, never, Scope.Scope>
  /** The channels asked for so far, and whether each is listened to now. */
  readonly states: Effect.Effect<ReadonlyArray<ListenerState>>
}>()("cowork/postgres/ListenHub") {}

const make = (options: ListenOptions = defaultListenOptions) =>
  Effect.gen(function*() {
    const pg = yield* PgClient.PgClient
    const layerScope = yield* Effect.scope
    const channels = new Map<string, ChannelState>()
    const resyncHub = yield* PubSub.unbounded<Resync>()
    // Serializes establishing the connection (which LISTENs every channel known then) and adding a channel to it.
    const lock = Semaphore.makeUnsafe(1)
    let live: { readonly connection: PgConnection.PgConnection; readonly scope: Scope.Scope; readonly broken: Deferred.Deferred<void> } | undefined
    let running = false
    let connectedThisTime = false
    let heardAt = 0
    let pending: { readonly nonce: string; readonly received: Deferred.Deferred<void> } | undefined

    const listenedTo = (state: ChannelState) =>
      Effect.gen(function*() {
        state.connected = true
        // Re-established, or established after a first attempt that failed or that subscribers stopped waiting for.
        if (state.everConnected || state.firstAttemptFailed) {
          yield* PubSub.publish(resyncHub, { channel: state.name, lostAt: state.everConnected ? state.lostAt : state.startedAt })
        }
        state.everConnected = true
        yield* Deferred.succeed(state.firstAttempt, undefined)
      })

    /** `LISTEN`s `state`'s channel on the connection, its notifications dispatched until the connection dies. */
    const listenOn = (
      connection: PgConnection.PgConnection,
      scope: Scope.Scope,
      broken: Deferred.Deferred<void>,
      state: ChannelState
    ) =>
      Effect.gen(function*() {
        const notifications = yield* Scope.provide(connection.listen(state.name), scope).pipe(
          Effect.timeoutOrElse({ duration: LISTEN_TIMEOUT, orElse: () => Effect.fail(new ListenerUnhealthy()) })
        )
        const dispatch = Effect.gen(function*() {
          while (true) {
            const notification = yield* Queue.take(notifications)
            if (notification.payload.startsWith(PING_PREFIX)) {
              if (pending !== undefined && notification.payload === `${PING_PREFIX}${pending.nonce}`) {
                yield* Deferred.succeed(pending.received, undefined)
              }
              continue
            }
            heardAt = yield* Clock.currentTimeMillis
            yield* PubSub.publish(state.payloads, notification.payload)
          }
        })
        // The queue fails when the connection dies: the supervisor re-establishes it.
        yield* dispatch.pipe(Effect.ensuring(Deferred.succeed(broken, undefined)), Effect.forkIn(scope))
      })

    const probe = Effect.gen(function*() {
      const intervalMs = Duration.toMillis(Duration.fromInputUnsafe(options.healthCheckInterval))
      // Something arrived within the interval: the connection delivers, no probe needed.
      if ((yield* Clock.currentTimeMillis) - heardAt < intervalMs) return
      const channel = channels.keys().next().value
      if (channel === undefined) return
      const nonce = globalThis.crypto.randomUUID()
      const received = yield* Deferred.make<void>()
      pending = { nonce, received }
      yield* pg.notify(channel, `${PING_PREFIX}${nonce}`)
      yield* Deferred.await(received).pipe(
        Effect.timeoutOrElse({ duration: options.healthCheckTimeout, orElse: () => Effect.fail(new ListenerUnhealthy()) })
      )
    }).pipe(Effect.delay(options.healthCheckInterval), Effect.forever)

    const connectOnce = Effect.scoped(Effect.gen(function*() {
      const scope = yield* Effect.scope
      const broken = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          live = undefined
          for (const state of channels.values()) {
            if (state.connected) state.lostAt = now
            state.connected = false
          }
        })
      )
      yield* lock.withPermits(1)(Effect.gen(function*() {
        // A connect into a restarting server can hang until the connect timeout; give up sooner and retry.
        // Pinned once for all channels: a LISTEN through the unpinned connection would queue behind the first one's pin.
        const connection = yield* Effect.flatMap(PgConnection.make({ ...pg.config, multiplex: false }), (opened) => opened.pin).pipe(
          Effect.timeoutOrElse({ duration: LISTEN_TIMEOUT, orElse: () => Effect.fail(new ListenerUnhealthy()) })
        )
        const known = [...channels.values()]
        for (const state of known) yield* listenOn(connection, scope, broken, state)
        live = { connection, scope, broken }
        connectedThisTime = true
        heardAt = yield* Clock.currentTimeMillis
        for (const state of known) yield* listenedTo(state)
      }))
      yield* Effect.logDebug("listening connection established").pipe(Effect.annotateLogs({ channels: [...channels.keys()].join(",") }))
      return yield* Effect.raceFirst(Effect.andThen(Deferred.await(broken), Effect.fail(new ListenerUnhealthy())), probe)
    }))

    const supervise = Effect.gen(function*() {
      let attempt = 0
      while (true) {
        connectedThisTime = false
        const exit = yield* Effect.exit(connectOnce)
        for (const state of channels.values()) {
          if (!state.everConnected) state.firstAttemptFailed = true
          yield* Deferred.succeed(state.firstAttempt, undefined)
        }
        if (connectedThisTime) attempt = 0
        const delay = yield* reconnectDelay(attempt++)
        yield* Effect.logWarning("listening connection lost; re-establishing").pipe(
          Effect.annotateLogs({ channels: [...channels.keys()].join(","), error: String(exit), retry_in_ms: Duration.toMillis(delay) })
        )
        yield* Effect.sleep(delay)
      }
    })

    /** The channel's state, `LISTEN`ed on the live connection when there is one; starts the connection on first use. */
    const ensure = (name: string) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const known = channels.get(name)
        if (known !== undefined) return known
        const state: ChannelState = {
          name,
          payloads: yield* PubSub.unbounded<string>(),
          firstAttempt: yield* Deferred.make<void>(),
          startedAt: yield* Clock.currentTimeMillis,
          connected: false,
          everConnected: false,
          firstAttemptFailed: false,
          lostAt: 0
        }
        channels.set(name, state)
        const current = live
        if (current !== undefined) {
          const added = yield* Effect.exit(listenOn(current.connection, current.scope, current.broken, state))
          if (added._tag === "Success") {
            yield* listenedTo(state)
          } else {
            // This connection could not LISTEN: the next one will, and announces the channel then.
            state.firstAttemptFailed = true
            yield* Deferred.succeed(state.firstAttempt, undefined)
            yield* Deferred.succeed(current.broken, undefined)
          }
        }
        if (!running) {
          running = true
          yield* Effect.forkIn(supervise, layerScope)
        }
        return state
      }))

    const subscribe = (channel: string) =>
      Effect.gen(function*() {
        const state = yield* ensure(channel)
        const subscription = yield* PubSub.subscribe(state.payloads)
        const waited = yield* Effect.timeoutOption(Deferred.await(state.firstAttempt), LISTEN_TIMEOUT)
        if (waited._tag === "None" && !state.everConnected) state.firstAttemptFailed = true
        return Stream.fromSubscription(subscription)
      })

    return ListenHub.of({
      subscribe,
      resyncs: Effect.map(PubSub.subscribe(resyncHub), Stream.fromSubscription),
      states: Effect.sync(() => [...channels.values()].map((state): ListenerState => ({ channel: state.name, connected: state.connected })))
    })
  })

/** The process's listening connection: one per layer build, shared by every feed built with it. */
export const layer = Layer.effect(ListenHub, make())
export const layerWith = (options: ListenOptions) => Layer.effect(ListenHub, make(options))
