import type { SessionEvent } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ChangeFeed, EventLog, type SessionChanged } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Exit, Layer, PubSub, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Writable } from "node:stream"
import { READ_BATCH, SessionEventHub } from "../src/SessionEventHub.ts"
import { SseSink } from "../src/SseSink.ts"
import { testScope } from "../../../test/support/TestScope.ts"

/**
 * The per-session SSE fan-out against an instrumented event log (every read counted) and a change feed the test
 * drives: reads per notification, and no gap / no duplicate over random subscribe / resume / disconnect interleavings.
 */
class Instrumented {
  readonly logs = new Map<string, Array<SessionEvent>>()
  /** Per session: the sequence after the last one ever appended (the log may have lost a pruned prefix). */
  readonly tips = new Map<string, number>()
  reads = 0
  /** While set, a read with `after` at or past `from` waits for `open` before it looks at the log. */
  gate: { readonly from: number; readonly open: Deferred.Deferred<void> } | undefined
  /** Extra scheduler yields inside each read, to interleave reads with appends and subscriptions. */
  readDelay: () => number = () => 0
  /** Runs inside a read once its rows are taken (before it returns): growth that comes while a read is in flight. */
  duringRead: Effect.Effect<void> | undefined
  readonly changes: PubSub.PubSub<SessionChanged>
  constructor(changes: PubSub.PubSub<SessionChanged>) {
    this.changes = changes
  }

  tip(sessionId: string) {
    return this.tips.get(sessionId) ?? 0
  }

  /** Retention: drops the events before `before` (never past the tip), as `EventLog.prune` does. */
  prune(sessionId: string, before: number) {
    this.logs.set(sessionId, (this.logs.get(sessionId) ?? []).filter((e) => e.sequence >= before))
  }

  /** Appends `count` events; notifies unless `notify` is false (a lost notification). */
  append(sessionId: string, count: number, notify = true) {
    return Effect.suspend(() => {
      const log = this.logs.get(sessionId) ?? []
      this.logs.set(sessionId, log)
      for (let i = 0; i < count; i++) {
        const sequence = this.tip(sessionId) + 1
        this.tips.set(sessionId, sequence)
        log.push({ sequence, type: "assistant.message", eventId: `evt_${sequence}`, payload: { n: sequence }, createdAt: new Date(0).toISOString() })
      }
      return notify ? PubSub.publish(this.changes, { orgId: "org", sessionId, lastSequence: this.tip(sessionId) }) : Effect.void
    })
  }

  readonly eventLog = EventLog.of({
    read: (sessionId, after, limit) => {
      const self = this
      return Effect.gen(function*() {
        self.reads++
        if (self.gate !== undefined && after >= self.gate.from) yield* Deferred.await(self.gate.open)
        // Snapshot at the read's start (a statement sees the log as of its start), returned after the delay.
        const rows = (self.logs.get(sessionId) ?? []).filter((e) => e.sequence > after).slice(0, limit)
        for (let i = self.readDelay(); i > 0; i--) yield* Effect.yieldNow
        const during = self.duringRead
        self.duringRead = undefined
        if (during !== undefined) yield* during
        return rows
      })
    },
    latestSequences: (ids) => Effect.sync(() => new Map(ids.map((id) => [id, this.tip(id)]))),
    changedSince: () => Effect.succeed([]),
    bounds: (sessionId) =>
      Effect.sync(() => ({ earliestSequence: this.logs.get(sessionId)?.[0]?.sequence ?? this.tip(sessionId) + 1, latestSequence: this.tip(sessionId) })),
    append: () => Effect.die("unused"),
    close: () => Effect.die("unused"),
    prune: () => Effect.die("unused")
  })
}

const setup = (bufferBytes = 1024 * 1024, coalesceMs = 0, coalesceSubscribers = 1) =>
  Effect.gen(function*() {
    const changes = yield* PubSub.unbounded<SessionChanged>()
    const log = new Instrumented(changes)
    const feed = ChangeFeed.of({
      sessionChanges: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription),
      commandSignals: Effect.succeed(Stream.never),
      notifyCommand: () => Effect.void,
      listeners: Effect.succeed([]),
      revocations: Effect.succeed(Stream.never),
      workflowChanges: Effect.succeed(Stream.never),
      resyncs: Effect.succeed(Stream.never)
    })
    const metrics = (yield* Layer.build(Metrics.layerTest("web"))).mapUnsafe.get(Metrics.key) as Metrics["Service"]
    const context = yield* Layer.build(SessionEventHub.layer.pipe(
      Layer.provide(Layer.succeed(EventLog, log.eventLog)),
      Layer.provide(Layer.succeed(ChangeFeed, feed)),
      Layer.provide(Layer.succeed(Metrics, metrics)),
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
        OPEN_COWORK_CLOUD_SSE_BACKSTOP_POLL_MS: "600000",
        OPEN_COWORK_CLOUD_SSE_SUBSCRIBER_BUFFER_BYTES: String(bufferBytes),
        OPEN_COWORK_CLOUD_SSE_COALESCE_MS: String(coalesceMs),
        OPEN_COWORK_CLOUD_SSE_COALESCE_SUBSCRIBERS: String(coalesceSubscribers)
      })))
    ))
    return {
      log,
      hub: context.mapUnsafe.get(SessionEventHub.key) as SessionEventHub["Service"],
      metrics
    }
  })

/** One client: the ids it received over all its connections, and its current connection. */
interface Client {
  readonly sessionId: string
  readonly start: number
  received: Array<number>
  /** The `snapshot.required` frames' data it received. */
  snapshots?: Array<unknown>
  /** Its current connection's stream ended. */
  ended?: boolean
  scope?: Scope.Closeable
  sink?: SseSink
}

const decoder = new TextDecoder()
const ids = (chunk: Uint8Array) => [...decoder.decode(chunk).matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))

/** Reads `sink` like the server's pipe does (every chunk as it comes); completes when the stream ends. */
const consume = (sink: SseSink, onChunk: (chunk: Uint8Array) => void) =>
  Effect.callback<void>((resume) => {
    sink.on("data", onChunk)
    sink.once("end", () => resume(Effect.void))
    sink.once("close", () => resume(Effect.void))
  })

/** Connects `client` from its last id; with `reading` false nothing reads its sink until the returned effect runs. */
const connect = (hub: SessionEventHub["Service"], client: Client, reading = true) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    const cursor = client.received.length === 0 ? client.start : client.received[client.received.length - 1]!
    const sink = new SseSink()
    yield* hub.subscribeSession(client.sessionId, cursor, sink).pipe(Scope.provide(scope))
    client.scope = scope
    client.sink = sink
    client.ended = false
    const run = consume(sink, (chunk) => {
      client.received.push(...ids(chunk))
      for (const m of decoder.decode(chunk).matchAll(/^event: snapshot\.required\ndata: (.*)$/gm)) (client.snapshots ??= []).push(JSON.parse(m[1]!))
    }).pipe(Effect.ensuring(Effect.sync(() => (client.ended = true))))
    if (reading) yield* Effect.forkDetach(run)
    return run
  })

/** The client goes away: its response body is destroyed (as the server's pipe does) and the request scope closes. */
const disconnect = (client: Client) =>
  Effect.gen(function*() {
    client.sink?.destroy()
    if (client.scope !== undefined) yield* Scope.close(client.scope, Exit.void)
    client.sink = undefined
    client.scope = undefined
  })

/** Polls `done` (yielding to the hub's fibers) until it holds, or fails after `ms`. */
const eventually = (done: () => boolean, what: string, ms = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!done()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("1 millis")
    }
  })

/** Yields to the hub's fibers (test clock: no time passes) until `done` holds, at most 200 times. */
const settle = (done: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200 && !done(); i++) yield* Effect.yieldNow
  })

const assertExactly = (client: Client, tip: number, label: string) =>
  assert.deepStrictEqual(
    client.received,
    Array.from({ length: tip - client.start }, (_, i) => client.start + i + 1),
    `${label}: every sequence after ${client.start} exactly once, in order`
  )

it.live("N subscribers on one session cost exactly ONE event read per notification", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup()
    yield* log.append("s1", 3)
    const clients: Array<Client> = Array.from({ length: 50 }, () => ({ sessionId: "s1", start: 0, received: [] }))
    for (const client of clients) yield* connect(hub, client)
    yield* eventually(() => clients.every((c) => c.received.length === 3), "the backlog")
    // Joining costs at most one read per subscriber (its replay) plus the feed's own; nothing per live event.
    assert.isAtMost(log.reads, clients.length + 1)

    for (let n = 1; n <= 10; n++) {
      const before = log.reads
      yield* log.append("s1", 2)
      yield* eventually(() => clients.every((c) => c.received.length === 3 + 2 * n), `notification ${n}`)
      assert.strictEqual(log.reads - before, 1, `notification ${n}: one read for ${clients.length} subscribers`)
    }
    // A second session's subscribers are a feed of their own: one read each per notification there too.
    const others: Array<Client> = Array.from({ length: 20 }, () => ({ sessionId: "s2", start: 0, received: [] }))
    yield* log.append("s2", 1)
    for (const client of others) yield* connect(hub, client)
    yield* eventually(() => others.every((c) => c.received.length === 1), "s2 backlog")
    const before = log.reads
    yield* log.append("s2", 1)
    yield* log.append("s1", 1)
    yield* eventually(() => others.every((c) => c.received.length === 2) && clients.every((c) => c.received.length === 24), "both")
    assert.strictEqual(log.reads - before, 2)
    for (const client of [...clients, ...others]) {
      assertExactly(client, log.tip(client.sessionId), "subscriber")
      yield* disconnect(client)
    }
  })))

it.live("a backlog longer than one read batch is read in batches, then live, for every subscriber", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup()
    yield* log.append("s1", READ_BATCH * 2 + 17)
    const clients: Array<Client> = [0, 5, READ_BATCH, READ_BATCH * 2 + 17].map((start) => ({ sessionId: "s1", start, received: [] }))
    for (const client of clients) yield* connect(hub, client)
    yield* log.append("s1", 3)
    const tip = log.tip("s1")
    yield* eventually(() => clients.every((c) => (c.received[c.received.length - 1] ?? c.start) === tip), "catch-up")
    for (const client of clients) assertExactly(client, tip, `from ${client.start}`)
  })))

it.live("random subscribe / resume / disconnect interleavings with concurrent appends: no gap, no duplicate", () =>
  Effect.scoped(Effect.gen(function*() {
    for (let seed = 1; seed <= 12; seed++) {
      let state = seed * 2654435761
      const random = () => {
        state = (state * 1103515245 + 12345) >>> 0
        return state / 2 ** 32
      }
      const { log, hub } = yield* setup()
      log.readDelay = () => Math.floor(random() * 4)
      const sessions = ["a", "b", "c"]
      for (const s of sessions) yield* log.append(s, 1 + Math.floor(random() * 5))
      const clients: Array<Client> = []
      for (let step = 0; step < 300; step++) {
        const roll = random()
        const session = sessions[Math.floor(random() * sessions.length)]!
        if (roll < 0.35) {
          // Append a burst; now and then the notification repeats an old tip or is lost (the next one covers it).
          yield* log.append(session, 1 + Math.floor(random() * (random() < 0.1 ? READ_BATCH + 5 : 4)), random() > 0.1)
          if (random() < 0.1) yield* PubSub.publish(log.changes, { orgId: "org", sessionId: session, lastSequence: 1 })
        } else if (roll < 0.6) {
          const client: Client = { sessionId: session, start: Math.floor(random() * (log.tip(session) + 1)), received: [] }
          clients.push(client)
          yield* connect(hub, client)
        } else if (roll < 0.75 && clients.length > 0) {
          yield* disconnect(clients[Math.floor(random() * clients.length)]!)
        } else if (roll < 0.9 && clients.length > 0) {
          // Resume a disconnected client from the last id it got (Last-Event-ID).
          const client = clients[Math.floor(random() * clients.length)]!
          if (client.scope === undefined) yield* connect(hub, client)
        }
        for (let i = Math.floor(random() * 6); i > 0; i--) yield* Effect.yieldNow
      }
      for (const client of clients) if (client.scope === undefined) yield* connect(hub, client)
      for (const s of sessions) yield* log.append(s, 1)
      yield* eventually(
        () => clients.every((c) => (c.received[c.received.length - 1] ?? c.start) === log.tip(c.sessionId)),
        `seed ${seed}: every client at its session's tip`
      )
      for (const client of clients) {
        assertExactly(client, log.tip(client.sessionId), `seed ${seed}`)
        yield* disconnect(client)
      }
    }
  })), 60_000)

it.live("retention prunes events a live stream has not read yet: it gets snapshot.required and ends, never a silent gap", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup()
    yield* log.append("s1", 5)
    const behind: Client = { sessionId: "s1", start: 0, received: [] }
    yield* connect(hub, behind)
    yield* eventually(() => behind.received.length === 5, "the backlog")
    // Events 6..10 are committed but their notification is late; a retention pass prunes before 9 meanwhile.
    yield* log.append("s1", 5, false)
    log.prune("s1", 9)
    // A stream that opens now (its cursor 8 was checked against the bounds) has missed nothing.
    const late: Client = { sessionId: "s1", start: 8, received: [] }
    yield* connect(hub, late)
    yield* PubSub.publish(log.changes, { orgId: "org", sessionId: "s1", lastSequence: 10 })
    yield* eventually(() => behind.ended === true, "the stream behind the pruned range to end")
    assert.deepStrictEqual(behind.received, [1, 2, 3, 4, 5], "nothing after the gap")
    assert.deepStrictEqual(behind.snapshots, [{ reason: "cursor_pruned", afterSequence: 5, earliestSequence: 9, latestSequence: 10 }])
    yield* eventually(() => late.received.length === 2, "the stream past the gap")
    assert.deepStrictEqual(late.received, [9, 10])
    assert.isUndefined(late.snapshots)
    assert.isFalse(late.ended)
  })))

it.live("retention prunes the rest of a replaying stream's backlog mid-replay: snapshot.required, not a jump", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup()
    const total = READ_BATCH * 2 + 17
    // The next batch pruned, then the whole rest of the log (nothing left to read at all).
    for (const [sessionId, cut] of [["s1", READ_BATCH + 50], ["s2", total + 1]] as const) {
      yield* log.append(sessionId, total)
      // A live stream at the tip holds the session's feed; the replaying one reads its own backlog in batches.
      const live: Client = { sessionId, start: total, received: [] }
      yield* connect(hub, live)
      const open = yield* Deferred.make<void>()
      log.gate = { from: READ_BATCH, open }
      const replaying: Client = { sessionId, start: 0, received: [] }
      yield* connect(hub, replaying)
      yield* eventually(() => replaying.received.length === READ_BATCH, `${sessionId}: the first batch`)
      // A retention pass runs before the stream reads its next batch.
      log.prune(sessionId, cut)
      yield* Deferred.succeed(open, undefined)
      yield* eventually(() => replaying.ended === true, `${sessionId}: the replaying stream to end`)
      log.gate = undefined
      assert.deepStrictEqual(replaying.received, Array.from({ length: READ_BATCH }, (_, i) => i + 1), "no event past the gap")
      assert.deepStrictEqual(replaying.snapshots, [
        { reason: "cursor_pruned", afterSequence: READ_BATCH, earliestSequence: cut, latestSequence: total }
      ])
      assert.isFalse(live.ended, "the stream at the tip goes on")
      yield* log.append(sessionId, 1)
      yield* eventually(() => live.received.length === 1, `${sessionId}: live event`)
    }
  })))

it.live("a subscriber that falls more than its buffer behind is ended; it resumes by id with no gap; others are unaffected", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup(4_096)
    yield* log.append("s1", 1)
    const fast: Client = { sessionId: "s1", start: 0, received: [] }
    const slow: Client = { sessionId: "s1", start: 0, received: [] }
    yield* connect(hub, fast)
    const drainSlow = yield* connect(hub, slow, false)
    yield* eventually(() => fast.received.length === 1, "fast backlog")
    for (let i = 0; i < 40; i++) {
      yield* log.append("s1", 1)
      yield* eventually(() => fast.received.length === i + 2, `event ${i}`)
    }
    // The slow stream ends after what it had queued (under ~4 KiB), well short of the tip...
    yield* drainSlow
    assert.isAbove(slow.received.length, 0)
    assert.isBelow(slow.received[slow.received.length - 1]!, log.tip("s1"))
    // ...and resumes from its last id.
    yield* Scope.close(slow.scope!, Exit.void)
    yield* connect(hub, slow)
    yield* eventually(() => slow.received[slow.received.length - 1] === log.tip("s1"), "slow caught up")
    assertExactly(slow, log.tip("s1"), "slow")
    assertExactly(fast, log.tip("s1"), "fast")
  })))

it.live("a read larger than a stream's buffer: the stream never holds more than its buffer, it takes the rest at its client's pace, and a fast one is not ended", () =>
  Effect.scoped(Effect.gen(function*() {
    const buffer = 4_096
    const { log, hub, metrics } = yield* setup(buffer)
    const fast: Client = { sessionId: "s1", start: 0, received: [] }
    const slow: Client = { sessionId: "s1", start: 0, received: [] }
    yield* connect(hub, fast)
    const drainSlow = yield* connect(hub, slow, false)
    // One notification, one read of 150 events (~22 KiB of frames, five times the buffer), to a stream with nothing
    // queued that does not read (before: all of it was queued at once) and to one that reads.
    yield* log.append("s1", 150)
    yield* eventually(() => fast.received.length === 150, "the fast stream has the read")
    yield* eventually(() => slow.sink!.queuedBytes > 0, "the slow stream has frames queued")
    assert.isAtMost(slow.sink!.queuedBytes, buffer, "what waits for the client stays within its buffer")
    // More while it does not read: still within the buffer.
    yield* log.append("s1", 50)
    yield* eventually(() => fast.received.length === 200, "the fast stream has the second read")
    assert.isAtMost(slow.sink!.queuedBytes, buffer, "still within the buffer")
    assert.isFalse(slow.sink!.finished, "not ended: it had nothing waiting when the read came")
    // Reading again, it gets everything, in order, no gap; so did the fast one, which was never ended.
    yield* Effect.forkDetach(drainSlow)
    yield* eventually(() => slow.received[slow.received.length - 1] === 200, "slow caught up")
    assertExactly(slow, 200, "slow")
    assertExactly(fast, 200, "fast")
    assert.isFalse(fast.ended || slow.ended, "neither stream ended")
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_sse_stream_writes_total", { outcome: "slow_consumer" }), 0)
    // Both still live.
    yield* log.append("s1", 1)
    yield* eventually(() => fast.received.length === 201 && slow.received.length === 201, "both live")
    // A single frame larger than the whole buffer still reaches a stream with nothing queued (it cannot be split).
    const tiny = yield* setup(64)
    const one: Client = { sessionId: "s2", start: 0, received: [] }
    yield* connect(tiny.hub, one)
    yield* tiny.log.append("s2", 2)
    yield* eventually(() => one.received.length === 2, "one large frame at a time")
  })))

it.live("a stream opening a session's feed far behind takes the backlog at its client's pace: never more than its buffer waiting, not ended, every event in order", () =>
  Effect.scoped(Effect.gen(function*() {
    // One read batch (~30 KiB of frames) fits the buffer whole; two do not. The stream is the session's only one on
    // the process, so the feed is new and reads the backlog from its cursor batch after batch, as fast as the log
    // answers (before: the second batch found the first still waiting and ended the stream, ~1 buffer per reconnect;
    // and while it catches up on its own, the feed must not read the rest of the backlog for nobody).
    const buffer = 40_000
    const { log, hub, metrics } = yield* setup(buffer)
    const total = 30 * READ_BATCH
    yield* log.append("s1", total)
    const client: Client = { sessionId: "s1", start: 0, received: [] }
    const drain = yield* connect(hub, client, false)
    yield* eventually(() => client.sink!.queuedBytes > 0 && log.reads >= 3, "the feed's first batches and a read of its own")
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
    assert.isFalse(client.sink!.finished, "not ended for a backlog it was never live for")
    assert.isAtMost(client.sink!.queuedBytes, buffer, "what waits for the client stays within its buffer")
    const readsWaiting = log.reads
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
    assert.strictEqual(log.reads, readsWaiting, "no read while its client takes nothing")
    // Its client reads: the whole backlog, in order, on this one connection; then live.
    yield* Effect.forkDetach(drain)
    yield* eventually(() => client.received.length === total, "the backlog")
    assertExactly(client, total, "catching up")
    // Each batch read about once: the feed does not read on for nobody while its only stream catches up on its own
    // (before: 60 reads for these 30 batches, the feed's 30 delivered to no one).
    assert.isAtMost(log.reads, total / READ_BATCH + 3, "the backlog is read once, not twice")
    assert.isFalse(client.ended, "never ended")
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_sse_stream_writes_total", { outcome: "slow_consumer" }), 0)
    yield* log.append("s1", 1)
    yield* eventually(() => client.received.length === total + 1, "live")
    assertExactly(client, total + 1, "live")
  })))

it.effect("a stream catching up on a read larger than its buffer whose client takes nothing is ended 3 ticks later and closed 3 after", () =>
  Effect.scoped(Effect.gen(function*() {
    const buffer = 4_096
    const { log, hub } = yield* setup(buffer)
    let destinationDestroyed = false
    const stalled = new Writable({
      highWaterMark: 1_024,
      write: () => {},
      destroy: (error, callback) => {
        destinationDestroyed = true
        callback(error)
      }
    })
    const sink = new SseSink()
    sink.pipe(stalled)
    yield* hub.subscribeSession("s1", 0, sink)
    yield* log.append("s1", 150)
    for (let i = 0; i < 200 && sink.queuedBytes === 0; i++) yield* Effect.yieldNow
    assert.isAbove(sink.queuedBytes, 0)
    assert.isAtMost(sink.queuedBytes, buffer)
    assert.isFalse(sink.finished, "waiting for its client, not ended yet")
    yield* TestClock.adjust("15 seconds")
    for (let i = 0; i < 100 && !sink.finished; i++) yield* Effect.yieldNow
    assert.isTrue(sink.finished, "ended after 3 ticks of waiting")
    assert.isFalse(destinationDestroyed)
    yield* TestClock.adjust("20 seconds")
    for (let i = 0; i < 100 && !destinationDestroyed; i++) yield* Effect.yieldNow
    assert.isTrue(destinationDestroyed, "its connection is closed 3 ticks later")
  })))

it.effect("every idle session stream gets a `: keep-alive` comment every 15 s from the one process-wide timer; a busy one none", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup()
    yield* log.append("s1", 1)
    const texts: Array<string> = []
    const sinks = yield* Effect.forEach([0, 1], (cursor) => {
      const sink = new SseSink()
      return Effect.as(hub.subscribeSession("s1", cursor, sink), sink)
    })
    yield* Effect.forEach(sinks, (sink) => Effect.forkScoped(consume(sink, (chunk) => texts.push(decoder.decode(chunk)))))
    const keepAlives = () => texts.filter((t) => t === ": keep-alive\n\n").length
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
    assert.strictEqual(keepAlives(), 0)
    yield* TestClock.adjust("15 seconds")
    for (let i = 0; i < 100 && keepAlives() < 2; i++) yield* Effect.yieldNow
    assert.strictEqual(keepAlives(), 2, "one per stream")
    yield* TestClock.adjust("15 seconds")
    for (let i = 0; i < 100 && keepAlives() < 4; i++) yield* Effect.yieldNow
    assert.strictEqual(keepAlives(), 4)
    // A stream written to meanwhile needs none: 10 s on, an event; at 45 s (where a fixed 15 s timer would write
    // to every stream) it has been idle only 5 s, so nothing; 10 s later it gets one.
    yield* TestClock.adjust("10 seconds")
    const frames = () => texts.filter((t) => t.startsWith("id: ")).length
    const framesBefore = frames()
    yield* log.append("s1", 1)
    for (let i = 0; i < 100 && frames() < framesBefore + 2; i++) yield* Effect.yieldNow
    assert.strictEqual(frames(), framesBefore + 2, "the event reached both streams")
    yield* TestClock.adjust("5 seconds")
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
    assert.strictEqual(keepAlives(), 4, "no keep-alive for a stream written to within 15 s")
    yield* TestClock.adjust("10 seconds")
    for (let i = 0; i < 100 && keepAlives() < 6; i++) yield* Effect.yieldNow
    assert.strictEqual(keepAlives(), 6)
    assert.strictEqual(log.reads <= 3, true, "keep-alives cost no reads")
  })))

it.effect("with a coalescing window, the notifications within it cost one read and ONE write per stream, every event in order", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup(1024 * 1024, 20)
    yield* log.append("s1", 1)
    const chunks: Array<Array<Uint8Array>> = [[], []]
    const sinks = yield* Effect.forEach([0, 1], (cursor) => {
      const sink = new SseSink()
      return Effect.as(hub.subscribeSession("s1", cursor, sink), sink)
    })
    yield* Effect.forEach(sinks, (sink, i) => Effect.forkScoped(consume(sink, (chunk) => chunks[i]!.push(chunk))))
    const received = (i: number) => chunks[i]!.flatMap(ids)
    // (The first append's notification may reach the feed after the streams opened: its read waits the window too.)
    yield* TestClock.adjust("20 millis")
    for (let i = 0; i < 100 && received(0).length < 1; i++) yield* Effect.yieldNow
    assert.deepStrictEqual(received(0), [1], "the backlog")
    const writesBefore = chunks.map((c) => c.length)
    const readsBefore = log.reads
    // A burst: 3 commits (1 + 40 + 2 events), each notified, within the window.
    yield* log.append("s1", 1)
    yield* TestClock.adjust("5 millis")
    yield* log.append("s1", 40)
    yield* TestClock.adjust("5 millis")
    yield* log.append("s1", 2)
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
    assert.strictEqual(log.reads, readsBefore, "nothing read inside the window")
    assert.deepStrictEqual(chunks.map((c) => c.length), writesBefore, "nothing written inside the window")
    yield* TestClock.adjust("10 millis")
    for (let i = 0; i < 100 && received(1).length < 43; i++) yield* Effect.yieldNow
    assert.strictEqual(log.reads - readsBefore, 1, "one read for the three notifications")
    assert.deepStrictEqual(chunks.map((c, i) => c.length - writesBefore[i]!), [1, 1], "one write per stream")
    assert.deepStrictEqual(received(0), Array.from({ length: 44 }, (_, i) => i + 1), "complete and in order")
    assert.deepStrictEqual(received(1), Array.from({ length: 43 }, (_, i) => i + 2), "complete and in order")
  })))

it.effect("the coalescing window applies to a session with at least OPEN_COWORK_CLOUD_SSE_COALESCE_SUBSCRIBERS streams; one with fewer reads every notification at once", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup(1024 * 1024, 10, 2)
    const open = (sessionId: string) =>
      Effect.gen(function*() {
        const sink = new SseSink()
        const chunks: Array<Uint8Array> = []
        yield* hub.subscribeSession(sessionId, 0, sink)
        yield* Effect.forkScoped(consume(sink, (chunk) => chunks.push(chunk)))
        return chunks
      })
    const many = [yield* open("s1"), yield* open("s1")]
    const few = yield* open("s2")
    const received = (chunks: Array<Uint8Array>) => chunks.flatMap(ids)
    yield* settle(() => false) // the new feeds' first reads (an empty log)
    // The session watched by 2 streams waits the window (the window itself is the test above)...
    let reads = log.reads
    yield* log.append("s1", 1)
    yield* settle(() => false)
    assert.strictEqual(log.reads, reads, "s1: nothing read inside the window")
    yield* TestClock.adjust("10 millis")
    yield* settle(() => many.every((c) => received(c).length === 1))
    assert.strictEqual(log.reads - reads, 1)
    // ...the session watched by 1 stream reads every notification at once, however close together.
    for (let n = 1; n <= 3; n++) {
      reads = log.reads
      yield* log.append("s2", 1)
      yield* settle(() => received(few).length === n)
      assert.strictEqual(log.reads - reads, 1, `s2 notification ${n}: read at once`)
    }
    assert.deepStrictEqual(received(few), [1, 2, 3])
    assert.strictEqual(few.length, 3, "one write per notification")
  })))

it.effect("with a coalescing window, a notification that comes during a read waits the window too: a busy session is read at most once per window", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup(1024 * 1024, 10, 1)
    const sink = new SseSink()
    const chunks: Array<Uint8Array> = []
    yield* hub.subscribeSession("s1", 0, sink)
    yield* Effect.forkScoped(consume(sink, (chunk) => chunks.push(chunk)))
    yield* settle(() => false) // the new feed's first read (an empty log)
    const reads = log.reads
    yield* log.append("s1", 1)
    // The next read (after the window) sees event 1; while it is in flight, 2 more events are committed and notified.
    log.duringRead = log.append("s1", 2)
    yield* TestClock.adjust("10 millis")
    yield* settle(() => chunks.flatMap(ids).length === 1)
    yield* settle(() => false)
    assert.strictEqual(log.reads - reads, 1, "no second read before the window")
    assert.deepStrictEqual(chunks.flatMap(ids), [1])
    yield* TestClock.adjust("10 millis")
    yield* settle(() => chunks.flatMap(ids).length === 3)
    assert.strictEqual(log.reads - reads, 2, "the growth during the read: one more read, a window later")
    assert.deepStrictEqual(chunks.flatMap(ids), [1, 2, 3])
  })))

it.effect("workspace streams: each change of the org's sessions once per stream (another org's never), idle keep-alives from the same timer, ended when the scope closes", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup()
    const texts = new Map<SseSink, Array<string>>()
    const open = (orgId: string) =>
      Effect.gen(function*() {
        const scope = yield* testScope
        const sink = new SseSink()
        texts.set(sink, [])
        yield* hub.subscribeOrg(orgId, sink).pipe(Scope.provide(scope))
        yield* Effect.forkScoped(consume(sink, (chunk) => texts.get(sink)!.push(decoder.decode(chunk))))
        return { sink, scope }
      })
    const [a, b, other] = yield* Effect.forEach(["org", "org", "org2"], open)
    const changes = (sink: SseSink) => texts.get(sink)!.filter((t) => t.startsWith("event: session.changed"))
    yield* log.append("s1", 2)
    yield* log.append("s2", 1)
    for (let i = 0; i < 100 && changes(b!.sink).length < 2; i++) yield* Effect.yieldNow
    for (const w of [a!, b!]) {
      assert.deepStrictEqual(changes(w.sink), [
        `event: session.changed\ndata: {"sessionId":"s1","lastSequence":2}\n\n`,
        `event: session.changed\ndata: {"sessionId":"s2","lastSequence":1}\n\n`
      ])
    }
    assert.deepStrictEqual(texts.get(other!.sink), [], "another org's changes never")
    yield* TestClock.adjust("15 seconds")
    const keepAlives = (sink: SseSink) => texts.get(sink)!.filter((t) => t === ": keep-alive\n\n").length
    for (let i = 0; i < 100 && keepAlives(other!.sink) < 1; i++) yield* Effect.yieldNow
    assert.deepStrictEqual([a!, b!, other!].map((w) => keepAlives(w.sink)), [1, 1, 1], "one keep-alive each, from the hub's timer")
    yield* Scope.close(a!.scope, Exit.void)
    assert.isTrue(a!.sink.finished, "closing the request's scope ends the stream")
    yield* log.append("s1", 1)
    for (let i = 0; i < 100 && changes(b!.sink).length < 3; i++) yield* Effect.yieldNow
    assert.strictEqual(changes(b!.sink).length, 3)
    assert.strictEqual(changes(a!.sink).length, 2, "nothing after its end")
  })))

it.effect("a stream ended for being too far behind whose client still takes nothing is closed 3 ticks later; a reading one is not", () =>
  Effect.scoped(Effect.gen(function*() {
    const { log, hub } = yield* setup(4_096)
    // The stalled client's side: a response whose socket never takes a byte more.
    let destinationDestroyed = false
    const stalled = new Writable({
      highWaterMark: 1_024,
      write: () => {},
      destroy: (error, callback) => {
        destinationDestroyed = true
        callback(error)
      }
    })
    const slowSink = new SseSink()
    slowSink.pipe(stalled)
    yield* hub.subscribeSession("s1", 0, slowSink)
    const reading: Client = { sessionId: "s1", start: 0, received: [] }
    yield* connect(hub, reading)
    // Reads of 20 events (~3 KiB) each fit the reading stream's buffer; the stalled one's fill up.
    for (let n = 1; n <= 20; n++) {
      yield* log.append("s1", 20)
      for (let i = 0; i < 100 && reading.received.length < 20 * n; i++) yield* Effect.yieldNow
    }
    assert.strictEqual(reading.received.length, 400)
    assert.isTrue(slowSink.finished, "ended for being more than the buffer behind")
    assert.isFalse(slowSink.destroyed, "not closed yet: what is queued may still be taken")
    // The first tick finds it ended; 3 ticks later it is closed, connection and all.
    yield* TestClock.adjust("15 seconds")
    for (let i = 0; i < 50; i++) yield* Effect.yieldNow
    assert.isFalse(destinationDestroyed)
    yield* TestClock.adjust("5 seconds")
    for (let i = 0; i < 100 && !destinationDestroyed; i++) yield* Effect.yieldNow
    assert.isTrue(destinationDestroyed, "the stalled client's connection is closed")
    assert.isTrue(slowSink.destroyed)
    assert.isFalse(reading.sink!.finished, "the reading stream goes on")
    assert.isFalse(reading.ended)
  })))
