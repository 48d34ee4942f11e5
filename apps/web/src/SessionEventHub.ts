import type { SessionEvent } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ChangeFeed, EventLog, type SessionChanged } from "@cowork/services"
import { Config, Context, Duration, Effect, Layer, Schedule, type Scope, Stream } from "effect"
import { SseChunk } from "./SseChunk.ts"
import { eventFrame, frame } from "./SseFrames.ts"
import type { SseSink } from "./SseSink.ts"

/** Allowance for the database clock running behind this process's when reading what changed during an outage. */
const RESYNC_CLOCK_SLACK_MS = 5_000
/** Most session changes replayed to workspace streams after one reconnect. */
const RESYNC_ORG_LIMIT = 1_000
/** Events per keyset read (the hub's and a resuming subscriber's). */
export const READ_BATCH = 200
/**
 * Bytes a subscriber may have waiting in this process — sent, not yet taken by its client nor held by the kernel
 * (`OPEN_COWORK_CLOUD_SSE_SUBSCRIBER_BUFFER_BYTES`, default 1 MiB; the kernel's socket buffers come on top). A read
 * that does not fit is a slow consumer's: the stream gets the whole frames that fit (at least one when nothing
 * waits, so a single large event still goes through), then ends (the `retry:` hint applies) and the client resumes
 * by `Last-Event-ID` with no gap.
 */
export const DEFAULT_SUBSCRIBER_BUFFER_BYTES = 1024 * 1024
/**
 * How long a session's feed waits after a notification before it reads (`OPEN_COWORK_CLOUD_SSE_COALESCE_MS`), and after
 * a read before the next (for what came during it), when the session has `OPEN_COWORK_CLOUD_SSE_COALESCE_SUBSCRIBERS`
 * or more streams on this process. Notifications that arrive
 * meanwhile are covered by that one read, so every stream of the session gets them in ONE socket write: the web CPU
 * per notification grows with the streams by one write each, and that write (a syscall per stream) is what is left
 * per subscriber. A prompt's 3 commits (`prompt.submitted`, the worker's opening and closing appends) come a few
 * milliseconds apart; a 10 ms window makes them ~1 write per stream per prompt instead of ~3, at up to 10 ms delay on
 * the events of a widely watched session. A session with fewer streams (a user's own tab) reads at once: target 5's
 * prompt → first worker event latency (see docs/benchmarks.md, 2026-12-01 perf-sse). `0` reads at once always.
 */
export const DEFAULT_COALESCE_MS = 10
export const DEFAULT_COALESCE_SUBSCRIBERS = 10
/** The `: keep-alive` comment every open session stream gets from one process-wide timer. */
export const KEEP_ALIVE_INTERVAL = "15 seconds"
/**
 * The session streams' keep-alive timer ticks every 5 s and writes the comment only to streams that were written
 * nothing for 3 ticks (15–20 s): a busy stream needs none, and 10,000 streams are not all written in one burst
 * (every 15 s that burst stalled the process for ~0.4 s, the p99 of the frames queued behind it).
 */
const KEEP_ALIVE_TICK = "5 seconds"
const KEEP_ALIVE_IDLE_TICKS = 3
/**
 * A stream that was ended (too far behind, drained, revoked) but whose client has not taken what was queued after 3
 * more ticks (10–15 s) stopped reading: its connection is closed, so it holds neither its buffers (up to one read
 * past `OPEN_COWORK_CLOUD_SSE_SUBSCRIBER_BUFFER_BYTES`, plus the socket's) nor its stream slot.
 */
const STALLED_TICKS = 3

const KEEP_ALIVE = SseChunk.text(": keep-alive\n\n")
const encode = SseChunk.text
/**
 * A monotonic clock in ms, to split the fan-out's cost per session from its cost per stream: the fan-out runs
 * synchronously, so the time it takes is its CPU unless the process was preempted meanwhile. (Not the thread's CPU
 * clock: `process.threadCpuUsage` reads a per-thread total the kernel brings up to date only at scheduler ticks and
 * switches, too coarse for a loop of a fraction of a millisecond.)
 */
const nowMs = () => performance.now()

/** One open stream the hub writes to: the response body, and when it was last written to. */
interface Listener {
  /** The keep-alive tick during which something was last queued to it. */
  lastTick: number
  /** The first keep-alive tick that found its sink finished (it is still open: its client has not taken the rest). */
  finishedTick?: number
  /** The keep-alive tick since which its replay has waited for the client to take what was queued. */
  waitingTick?: number
  readonly sink: SseSink
}

/** One open session stream: a listener with its cursor (the last sequence queued for it). */
interface Subscriber extends Listener {
  cursor: number
  /** Joined the session's live fan-out (its replay reached the hub's read position). */
  live: boolean
  /** The request's scope: its replay loop runs there (at the start, and after a read it could not take whole). */
  readonly scope: Scope.Scope
}

/** Every subscriber of one session on this process, and the one read position they share. */
interface Feed {
  readonly sessionId: string
  readonly subscribers: Set<Subscriber>
  /** The last sequence the hub read and fanned out. */
  lastRead: number
  /** The highest tip signalled. */
  tip: number
  /** Read until a short batch, whatever the tip (a new feed; a full batch). */
  catchUp: boolean
  /** A read loop is running for this feed (at most one). */
  reading: boolean
}

/**
 * In-memory fan-out of session log growth to this process's SSE subscribers. It holds ONE `ChangeFeed`
 * subscription (one `LISTEN` connection) for the whole process, and ONE read position per watched session: on a
 * notification the session's feed reads once after its last read sequence and queues the rendered frames (rendered
 * once) to every live subscriber of the session, whatever their number. A subscriber resuming from an older cursor
 * reads its own backlog, then joins the live fan-out when its cursor has reached the feed's read position (no gap,
 * no duplicate: both happen in one synchronous step, and the feed only queues what is past a subscriber's cursor).
 * When the listening connection is re-established, one read of the watched sessions' tips wakes every feed whose
 * session grew meanwhile, and workspace streams get a `session.changed` for each of their org's sessions that
 * changed since the connection was lost; a slow backstop poll of the tips covers anything else.
 */
export class SessionEventHub extends Context.Service<SessionEventHub, {
  /**
   * Writes the session's events after `cursor` to `sink` as encoded SSE frames until the scope closes: the backlog,
   * then live, with a `: keep-alive` comment every 15 s. The hub finishes the sink (after what is queued) when the
   * subscriber falls more than the buffer behind, or when reads keep failing. No fiber runs per subscriber once its
   * backlog is replayed: the session's one read loop writes to every subscriber's sink.
   */
  readonly subscribeSession: (sessionId: string, cursor: number, sink: SseSink) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Writes a `session.changed` frame to `sink` for every change to one of the org's sessions until the scope closes
   * (the workspace stream): encoded once per change for all of the org's streams, the same idle-only keep-alive and
   * slow-consumer end as session streams, no fiber or queue per stream.
   */
  readonly subscribeOrg: (orgId: string, sink: SseSink) => Effect.Effect<void, never, Scope.Scope>
  /** Session and workspace streams subscribed on this process (one whose scope closed no longer counts). */
  readonly subscribers: Effect.Effect<number>
}>()("cowork/web/SessionEventHub") {
  static readonly layer = Layer.effect(
    SessionEventHub,
    Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const eventLog = yield* EventLog
      const metrics = yield* Metrics
      const layerScope = yield* Effect.scope
      const backstopMs = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_BACKSTOP_POLL_MS").pipe(Config.withDefault(300_000))
      const bufferBytes = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_SUBSCRIBER_BUFFER_BYTES").pipe(
        Config.withDefault(DEFAULT_SUBSCRIBER_BUFFER_BYTES)
      )
      const coalesceMs = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_COALESCE_MS").pipe(Config.withDefault(DEFAULT_COALESCE_MS))
      const coalesceSubscribers = yield* Config.Int("OPEN_COWORK_CLOUD_SSE_COALESCE_SUBSCRIBERS").pipe(
        Config.withDefault(DEFAULT_COALESCE_SUBSCRIBERS)
      )
      /** The wait before a notified read: the window, for a session with enough streams here to be worth it. */
      const coalesce = (f: Feed) =>
        coalesceMs > 0 && f.subscribers.size >= coalesceSubscribers ? Effect.sleep(Duration.millis(coalesceMs)) : Effect.void
      const feeds = new Map<string, Feed>()
      /** Keep-alive ticks so far (a counter, not a clock: no clock read per frame). */
      let tick = 0
      const orgWatchers = new Map<string, Set<Listener>>()

      // A read that fails (a pool connection from before an outage) is retried briefly before giving up.
      const read = (sessionId: string, after: number) =>
        eventLog.read(sessionId, after, READ_BATCH).pipe(
          Effect.catchCause((cause) => Effect.fail(cause)),
          Effect.retry({ schedule: Schedule.exponential("100 millis").pipe(Schedule.jittered), times: 4 })
        )

      const end = (sub: Subscriber) => {
        sub.live = false
        sub.sink.finish()
      }

      /** Streams ended for being too far behind, since the last count was recorded. */
      let slowConsumers = 0

      /** Ends a stream that is too far behind (more than its buffer waiting): it resumes by id. */
      const endSlow = (sub: Listener) => {
        if (!sub.sink.finished) slowConsumers++
        sub.sink.finish()
      }

      /** Queues `chunk` if it fits in the stream's buffer with what already waits; a stream too far behind ends. */
      const offer = (sub: Listener, chunk: SseChunk) => {
        const queued = sub.sink.queuedBytes
        if (queued > 0 && queued + chunk.byteLength > bufferBytes) return endSlow(sub)
        sub.lastTick = tick
        sub.sink.send(chunk)
      }

      /**
       * Queues the first of `frames` that fit in the stream's buffer with what already waits — all of them (`whole`, their
       * encoding, when given) or a prefix, at least one frame when nothing waits (a single event larger than the buffer
       * still goes through) — and returns how many.
       */
      const offerFrames = (sub: Listener, frames: ReadonlyArray<string>, whole?: SseChunk): number => {
        const queued = sub.sink.queuedBytes
        if (whole !== undefined && queued + whole.byteLength <= bufferBytes) {
          offer(sub, whole)
          return frames.length
        }
        let text = ""
        let bytes = queued
        let n = 0
        for (const f of frames) {
          const size = Buffer.byteLength(f)
          if (bytes + size > bufferBytes && (n > 0 || queued > 0)) break
          text += f
          bytes += size
          n++
        }
        if (n === frames.length && whole !== undefined) offer(sub, whole)
        else if (n > 0) offer(sub, encode(text))
        return n
      }

      /**
       * Subscribers whose next events were pruned (a retention pass) before they read them: sequences are contiguous,
       * so a read after a cursor that does not start right after it is a gap. Each gets one `snapshot.required` (as a
       * client resuming from that cursor would) and its stream ends; the client reloads the view and resumes after it.
       */
      const snapshotRequired = (sessionId: string, subs: ReadonlyArray<Subscriber>) =>
        eventLog.bounds(sessionId).pipe(
          Effect.map((bounds) => {
            for (const sub of subs) {
              const data = {
                reason: "cursor_pruned",
                afterSequence: sub.cursor,
                earliestSequence: bounds.earliestSequence,
                latestSequence: bounds.latestSequence
              }
              offer(sub, encode(frame({ event: "snapshot.required", data })))
              end(sub)
            }
          }),
          // Without the bounds the streams just end: their clients resume by id and get it from the route.
          Effect.catchCause(() => Effect.sync(() => subs.forEach(end)))
        )

      /**
       * Fans one read out: each live subscriber gets the frames past its cursor, rendered once for all. A subscriber
       * with frames still waiting that cannot take a signalled read (live growth) is a slow consumer and ends; one that
       * cannot take it whole with nothing waiting (a read larger than its buffer), or that cannot take a read of a
       * backlog (`catchingUp`: a new feed reading from its first subscriber's cursor, or the batch after a full one —
       * reads that follow each other as fast as the database answers, not the session's pace), gets the frames that fit
       * and leaves the live fan-out to catch up by its own reads at its client's pace (`behind`). Returns the
       * subscribers the read skipped ahead of (pruned events between their cursor and the read), taken out of the feed.
       */
      const deliver = (
        f: Feed,
        events: ReadonlyArray<SessionEvent>,
        behind: Array<Subscriber>,
        catchingUp: boolean
      ): ReadonlyArray<Subscriber> => {
        const started = nowMs()
        const first = events[0]!.sequence
        const last = events[events.length - 1]!.sequence
        // Rendered and encoded once for every subscriber that needs the whole read (the usual case).
        const frames = events.map(eventFrame)
        const all = encode(frames.join(""))
        const encoded = nowMs()
        const skipped: Array<Subscriber> = []
        let writes = 0
        for (const sub of f.subscribers) {
          if (!sub.live || sub.cursor >= last || sub.sink.finished) continue
          if (sub.cursor < first - 1) {
            sub.live = false
            skipped.push(sub)
            continue
          }
          const from = sub.cursor < first ? 0 : sub.cursor - first + 1
          const rest = from === 0 ? frames : frames.slice(from)
          const queued = sub.sink.queuedBytes
          const n = offerFrames(sub, rest, from === 0 ? all : undefined)
          if (n > 0) writes++
          if (n === rest.length) sub.cursor = last
          else if (queued > 0 && !catchingUp) endSlow(sub)
          else {
            if (n > 0) sub.cursor = events[from + n - 1]!.sequence
            sub.live = false
            behind.push(sub)
          }
        }
        if (last > f.lastRead) f.lastRead = last
        const written = nowMs()
        fanoutCost.encode += encoded - started
        fanoutCost.write += written - encoded
        fanoutCost.writes += writes
        return skipped
      }

      /** The fan-out's cost since it was last recorded: recorded once per read, after the read's fan-out. */
      const fanoutCost = { encode: 0, write: 0, writes: 0 }
      const recordFanout = Effect.suspend(() => {
        const { encode, write, writes } = fanoutCost
        const slow = slowConsumers
        fanoutCost.encode = fanoutCost.write = fanoutCost.writes = slowConsumers = 0
        return Effect.all([
          metrics.inc("open_cowork_cloud_sse_fanout_busy_ms_total", { part: "encode" }, encode),
          metrics.inc("open_cowork_cloud_sse_fanout_busy_ms_total", { part: "write" }, write),
          metrics.inc("open_cowork_cloud_sse_stream_writes_total", { outcome: "written" }, writes),
          slow > 0 ? metrics.inc("open_cowork_cloud_sse_stream_writes_total", { outcome: "slow_consumer" }, slow) : Effect.void
        ], { discard: true })
      })

      /**
       * The feed reads only for a live subscriber: one catching up on its own (the replay loop, at its client's pace)
       * rejoins when its cursor reaches the feed's read position and starts the feed again, so a backlog is not read
       * twice — once by the feed as fast as the database answers, for nobody, and once by the replay.
       */
      const anyLive = (f: Feed) => {
        for (const sub of f.subscribers) if (sub.live) return true
        return false
      }
      const wanted = (f: Feed) => (f.catchUp || f.tip > f.lastRead) && anyLive(f)

      /**
       * The feed's one read loop: reads after its last read sequence until it has what was signalled. Each read of
       * signalled growth first waits the coalescing window — also one that follows a read, for the notifications that
       * came during it — so a busy session is read at most once per window; a backlog (a new feed, the batch after a
       * full one) is read at once. Notifications meanwhile only raise the tip.
       */
      const pump = (f: Feed): Effect.Effect<void> =>
        Effect.gen(function*() {
          while (true) {
            // The check and `reading = false` are one synchronous step, so a signal is never left unread.
            if (!wanted(f)) {
              f.reading = false
              return
            }
            const catchingUp = f.catchUp
            if (!catchingUp) yield* coalesce(f)
            const target = f.tip
            f.catchUp = false
            const events = yield* read(f.sessionId, f.lastRead)
            if (events.length > 0) {
              const behind: Array<Subscriber> = []
              const skipped = deliver(f, events, behind, catchingUp)
              yield* recordFanout
              for (const sub of behind) yield* startReplay(f, sub)
              if (skipped.length > 0) yield* snapshotRequired(f.sessionId, skipped)
            }
            if (events.length === READ_BATCH) f.catchUp = true
            else if (events.length === 0 && f.tip === target && f.tip > f.lastRead) {
              // Signalled growth that is not there to read: pruned. The streams behind it get snapshot.required and
              // the feed reads on from the earliest retained event; if nothing was pruned after all, stop rather
              // than spin (the backstop re-checks).
              const bounds = yield* eventLog.bounds(f.sessionId)
              if (bounds.earliestSequence - 1 > f.lastRead) {
                const behind = [...f.subscribers].filter((sub) => sub.live && sub.cursor < bounds.earliestSequence - 1)
                for (const sub of behind) sub.live = false
                f.lastRead = bounds.earliestSequence - 1
                yield* snapshotRequired(f.sessionId, behind)
              } else f.tip = f.lastRead
            }
          }
        }).pipe(
          Effect.catchCause((cause) =>
            Effect.gen(function*() {
              // Reads keep failing: end this session's streams; their clients resume by id (the `retry:` hint).
              f.reading = false
              for (const sub of f.subscribers) end(sub)
              if (feeds.get(f.sessionId) === f) feeds.delete(f.sessionId)
              yield* Effect.logWarning("SSE session read failed; its streams end and resume", cause)
            })
          )
        )

      const startPump = (f: Feed) =>
        Effect.suspend(() => {
          if (f.reading || !wanted(f)) return Effect.void
          f.reading = true
          return Effect.asVoid(Effect.forkIn(pump(f), layerScope))
        })

      const signalSession = (sessionId: string, tip: number) =>
        Effect.suspend(() => {
          const f = feeds.get(sessionId)
          if (f === undefined) return Effect.void
          if (tip > f.tip) f.tip = tip
          return startPump(f)
        })

      /** Until the client has taken what was queued (the keep-alive timer ends a stream that waits 3 ticks). */
      const flushed = (sub: Subscriber) =>
        Effect.callback<void>((resume) => {
          sub.waitingTick = tick
          const cancel = sub.sink.whenFlushed(() => resume(Effect.void))
          return Effect.sync(cancel)
        }).pipe(Effect.ensuring(Effect.sync(() => (sub.waitingTick = undefined))))

      /**
       * A subscriber's replay: reads its own backlog at its client's pace (at most the buffer queued at a time) until its
       * cursor reaches the feed's read position, then joins it (one synchronous step: from then on the feed queues
       * everything past its cursor). Run at the start, and for a live subscriber that could not take a read whole.
       */
      const replay = (f: Feed, sub: Subscriber): Effect.Effect<void> =>
        Effect.gen(function*() {
          const sink = sub.sink
          while (!sink.finished) {
            if (sub.cursor >= f.lastRead) {
              sub.live = true
              return yield* startPump(f)
            }
            const events = yield* read(f.sessionId, sub.cursor)
            if (sink.finished) return
            // Nothing after our cursor although the feed read up to its position, or a read that does not start
            // right after it: the backlog was pruned while we replayed it.
            if (events.length === 0 || events[0]!.sequence > sub.cursor + 1) return yield* snapshotRequired(f.sessionId, [sub])
            const frames = events.map(eventFrame)
            let at = 0
            while (!sink.finished) {
              const n = offerFrames(sub, at === 0 ? frames : frames.slice(at))
              at += n
              if (n > 0) sub.cursor = events[at - 1]!.sequence
              if (at === frames.length) break
              yield* flushed(sub)
            }
          }
        }).pipe(
          Effect.catchCause((cause) =>
            Effect.andThen(Effect.sync(() => end(sub)), Effect.logWarning("SSE replay read failed; the stream ends and resumes", cause))
          )
        )

      /** Starts the subscriber's replay in its request's scope (nothing per subscriber is kept for it meanwhile). */
      const startReplay = (f: Feed, sub: Subscriber): Effect.Effect<void> => Effect.asVoid(Effect.forkIn(replay(f, sub), sub.scope))

      const subscribeSession = (sessionId: string, cursor: number, sink: SseSink) =>
        Effect.gen(function*() {
          const sub: Subscriber = { cursor, live: false, lastTick: tick, sink, scope: yield* Effect.scope }
          const f = yield* Effect.acquireRelease(
            Effect.sync(() => {
              let f = feeds.get(sessionId)
              if (f === undefined) {
                // A new feed reads from its first subscriber's cursor until it has everything, then on signals.
                f = { sessionId, subscribers: new Set(), lastRead: cursor, tip: cursor, catchUp: true, reading: false }
                feeds.set(sessionId, f)
              }
              f.subscribers.add(sub)
              return f
            }),
            (f) =>
              Effect.sync(() => {
                end(sub)
                f.subscribers.delete(sub)
                if (f.subscribers.size === 0 && feeds.get(sessionId) === f) feeds.delete(sessionId)
              })
          )
          yield* startReplay(f, sub)
        })

      const subscribeOrg = (orgId: string, sink: SseSink) =>
        Effect.asVoid(Effect.acquireRelease(
          Effect.sync(() => {
            const watcher: Listener = { lastTick: tick, sink }
            let set = orgWatchers.get(orgId)
            if (set === undefined) {
              set = new Set()
              orgWatchers.set(orgId, set)
            }
            set.add(watcher)
            return watcher
          }),
          (watcher) =>
            Effect.sync(() => {
              sink.finish()
              const set = orgWatchers.get(orgId)
              set?.delete(watcher)
              if (set !== undefined && set.size === 0) orgWatchers.delete(orgId)
            })
        ))

      /** A change to the org's workspace streams: one frame, encoded once for all of them. */
      const announce = (change: SessionChanged) => {
        const watchers = orgWatchers.get(change.orgId)
        if (watchers === undefined) return
        const chunk = encode(frame({ event: "session.changed", data: { sessionId: change.sessionId, lastSequence: change.lastSequence } }))
        for (const watcher of watchers) offer(watcher, chunk)
      }

      const changes = yield* feed.sessionChanges
      yield* changes.pipe(
        Stream.runForEach((change) =>
          Effect.andThen(signalSession(change.sessionId, change.lastSequence), Effect.sync(() => announce(change)))
        ),
        Effect.forkScoped
      )

      // One batched read of every watched session's tip: wakes the feeds that are behind it (growth they were not
      // told about, or could not read).
      const catchUp = Effect.gen(function*() {
        if (feeds.size === 0) return
        const tips = yield* eventLog.latestSequences([...feeds.keys()])
        for (const [sessionId, tip] of tips) yield* signalSession(sessionId, tip)
      })

      // Workspace streams: the watched orgs' sessions that changed since the connection was lost (a few seconds of
      // slack for the database's clock), each announced like a notification.
      const orgCatchUp = (lostAt: number) =>
        Effect.gen(function*() {
          const changed = yield* eventLog.changedSince([...orgWatchers.keys()], lostAt - RESYNC_CLOCK_SLACK_MS, RESYNC_ORG_LIMIT)
          for (const change of changed) announce(change)
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

      // One timer for every open session and workspace stream (not one per stream), writing only to the idle ones: a
      // stream too far behind to take even this is ended like any slow one; an ended one still open is closed.
      const tend = (listener: Listener) => {
        if (listener.sink.finished) {
          listener.finishedTick ??= tick
          if (tick - listener.finishedTick >= STALLED_TICKS) listener.sink.abort()
        } else if (listener.waitingTick !== undefined && tick - listener.waitingTick >= STALLED_TICKS) endSlow(listener)
        else if (tick - listener.lastTick >= KEEP_ALIVE_IDLE_TICKS) offer(listener, KEEP_ALIVE)
      }
      yield* Effect.sync(() => {
        tick++
        for (const f of feeds.values()) f.subscribers.forEach(tend)
        for (const watchers of orgWatchers.values()) watchers.forEach(tend)
      }).pipe(Effect.delay(KEEP_ALIVE_TICK), Effect.forever, Effect.forkScoped)

      return SessionEventHub.of({
        subscribeSession,
        subscribeOrg,
        subscribers: Effect.sync(() => {
          let n = 0
          for (const f of feeds.values()) n += f.subscribers.size
          for (const watchers of orgWatchers.values()) n += watchers.size
          return n
        })
      })
    })
  )
}
