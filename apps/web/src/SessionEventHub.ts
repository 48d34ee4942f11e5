import { ChangeFeed, EventLog, type SessionChanged } from "@cowork/services"
import { Config, Context, Duration, Effect, Layer, Queue, Schedule, type Scope, Stream } from "effect"

/** Allowance for the database clock running behind this process's when reading what changed during an outage. */
const RESYNC_CLOCK_SLACK_MS = 5_000
/** Most session changes replayed to workspace streams after one reconnect. */
const RESYNC_ORG_LIMIT = 1_000

/**
 * In-memory fan-out of session log growth to this process's SSE subscribers. It holds ONE `ChangeFeed`
 * subscription (one `LISTEN` connection) for the whole process; subscribers catch up by keyset reads when
 * signalled. When the listening connection is re-established, one read of the watched sessions' tips wakes every
 * subscriber whose session grew meanwhile, and workspace streams get a `session.changed` for each of their org's
 * sessions that changed since the connection was lost; a slow backstop poll of the tips covers anything else.
 */
export class SessionEventHub extends Context.Service<SessionEventHub, {
  /** Signals (the new tip) whenever the session's log may have grown; only the latest signal is kept. */
  readonly watchSession: (sessionId: string) => Effect.Effect<Queue.Dequeue<number>, never, Scope.Scope>
  /** Every change to one of the org's sessions. */
  readonly watchOrg: (orgId: string) => Effect.Effect<Queue.Dequeue<SessionChanged>, never, Scope.Scope>
}>()("cowork/web/SessionEventHub") {
  static readonly layer = Layer.effect(
    SessionEventHub,
    Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const eventLog = yield* EventLog
      const backstopMs = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_BACKSTOP_POLL_MS").pipe(Config.withDefault(30_000))
      const sessionWatchers = new Map<string, Set<Queue.Queue<number>>>()
      const orgWatchers = new Map<string, Set<Queue.Queue<SessionChanged>>>()

      const register = <K, A>(map: Map<K, Set<Queue.Queue<A>>>, key: K, capacity: number) =>
        Effect.acquireRelease(
          Effect.gen(function*() {
            const queue = yield* Queue.sliding<A>(capacity)
            let set = map.get(key)
            if (set === undefined) {
              set = new Set()
              map.set(key, set)
            }
            set.add(queue)
            return queue
          }),
          (queue) =>
            Effect.sync(() => {
              const set = map.get(key)
              set?.delete(queue)
              if (set !== undefined && set.size === 0) map.delete(key)
            })
        )

      // The highest tip announced per watched session: the backstop only wakes subscribers for growth they missed.
      const knownTips = new Map<string, number>()
      const signalSession = (sessionId: string, tip: number) =>
        Effect.suspend(() => {
          const watchers = sessionWatchers.get(sessionId)
          if (watchers === undefined) return Effect.void
          knownTips.set(sessionId, Math.max(tip, knownTips.get(sessionId) ?? 0))
          return Effect.forEach(watchers, (queue) => Queue.offer(queue, tip), { discard: true })
        })

      const changes = yield* feed.sessionChanges
      yield* changes.pipe(
        Stream.runForEach((change) =>
          Effect.andThen(
            signalSession(change.sessionId, change.lastSequence),
            Effect.forEach(orgWatchers.get(change.orgId) ?? [], (queue) => Queue.offer(queue, change), { discard: true })
          )
        ),
        Effect.forkScoped
      )

      // One batched read of every watched session's tip: wakes subscribers for growth they were not told about.
      const catchUp = Effect.gen(function*() {
        const watched = [...sessionWatchers.keys()]
        for (const sessionId of knownTips.keys()) if (!sessionWatchers.has(sessionId)) knownTips.delete(sessionId)
        const tips = yield* eventLog.latestSequences(watched)
        for (const [sessionId, tip] of tips) {
          if (tip > (knownTips.get(sessionId) ?? -1)) yield* signalSession(sessionId, tip)
        }
      })

      // Workspace streams: the watched orgs' sessions that changed since the connection was lost (a few seconds of
      // slack for the database's clock), each announced like a notification.
      const orgCatchUp = (lostAt: number) =>
        Effect.gen(function*() {
          const changed = yield* eventLog.changedSince([...orgWatchers.keys()], lostAt - RESYNC_CLOCK_SLACK_MS, RESYNC_ORG_LIMIT)
          for (const change of changed) {
            yield* Effect.forEach(orgWatchers.get(change.orgId) ?? [], (queue) => Queue.offer(queue, change), { discard: true })
          }
        })

      // Right after the listening connection is back (notifications sent meanwhile were lost); the pool may still
      // hold connections from before the outage, so a failed read is retried a few times before the backstop.
      const resyncs = yield* feed.resyncs
      yield* resyncs.pipe(
        Stream.runForEach((resync) =>
          Effect.andThen(catchUp, orgCatchUp(resync.lostAt)).pipe(
            Effect.catchCause((cause) => Effect.fail(cause)),
            Effect.retry({ schedule: Schedule.exponential("100 millis").pipe(Schedule.jittered), times: 6 }),
            Effect.catchCause((cause) => Effect.logWarning("SSE catch-up after LISTEN reconnect failed", cause))
          )
        ),
        Effect.forkScoped
      )

      // ...and, as a backstop, once per interval however many streams are open.
      yield* catchUp.pipe(
        Effect.catchCause((cause) => Effect.logWarning("SSE backstop poll failed", cause)),
        Effect.delay(Duration.millis(backstopMs)),
        Effect.forever,
        Effect.forkScoped
      )

      return SessionEventHub.of({
        watchSession: (sessionId) => register(sessionWatchers, sessionId, 1),
        watchOrg: (orgId) => register(orgWatchers, orgId, 1024)
      })
    })
  )
}
