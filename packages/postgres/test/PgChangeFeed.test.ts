import { PgChangeFeed, PgDeliveryFeed, PgTokens, PgWorkflowStore } from "@cowork/postgres"
import { ChangeFeed, type CommandSignal, DeliveryFeed, type Resync, type SessionChanged, Tokens, WorkflowStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Queue, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { step, within } from "../../../test/support/Eventually.ts"
import { workflowInput } from "../../services/test/support/WorkflowStoreContract.ts"

const layer = Layer.mergeAll(
  PgChangeFeed.layerWith({ healthCheckInterval: "200 millis", healthCheckTimeout: "1 second" }),
  PgTokens.layer,
  PgWorkflowStore.layer
).pipe(Layer.provideMerge(TestDatabase.layer()))

const listenerCount = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
  return rows[0]!.n
}).pipe(Effect.orDie)

/** The feed's LISTEN on `channel` has completed (a notification sent from now on reaches it). */
const listening = (feed: ChangeFeed["Service"], channel: "cowork_events" | "cowork_commands") =>
  Effect.map(feed.listeners, (all) => all.some((l) => l.channel === channel && l.connected))

it.layer(layer, { excludeTestServices: true })("PgChangeFeed", (it) => {
  it.effect("fans one LISTEN out to every subscriber and re-establishes it after the connection dies", () =>
    Effect.scoped(Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const sql = yield* SqlClient.SqlClient
      const received: Array<Queue.Queue<SessionChanged>> = []
      for (let i = 0; i < 3; i++) {
        const queue = yield* Queue.unbounded<SessionChanged>()
        const stream = yield* feed.sessionChanges
        yield* stream.pipe(Stream.runForEach((change) => Queue.offer(queue, change)), Effect.forkScoped)
        received.push(queue)
      }
      // pg_stat_activity shows `LISTEN` as soon as the statement starts, before it takes effect: a notification sent
      // then is lost. The feed reports the channel connected only once its LISTEN has completed, so wait for that.
      yield* within(listening(feed, "cowork_events"), "the events channel is listened to", 10_000)
      assert.strictEqual(yield* listenerCount, 1, "one LISTEN connection for three subscribers")
      yield* sql`SELECT pg_notify('cowork_events', 'org_a ses_a 7')`
      for (const queue of received) {
        assert.deepStrictEqual(yield* Queue.take(queue), { orgId: "org_a", sessionId: "ses_a", lastSequence: 7 })
      }
      assert.strictEqual(yield* listenerCount, 1)

      yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
      // Re-established with backoff: notifications flow again to the same subscribers.
      let sequence = 100
      yield* within(Effect.gen(function*() {
        sequence++
        yield* sql`SELECT pg_notify('cowork_events', ${`org_a ses_a ${sequence}`})`.pipe(Effect.orDie)
        yield* Effect.sleep("50 millis")
        const got = yield* Queue.clear(received[0]!)
        return got.some((change) => change.lastSequence > 100)
      }), "notifications flow again after the connection was re-established", 10_000)
      // The terminated backend leaves pg_stat_activity on its own time (it may still be exiting under load).
      yield* within(Effect.map(listenerCount, (n) => n === 1), "one LISTEN connection again", 10_000)
    })))

  it.effect("notifyCommand signals command listeners; malformed payloads are ignored", () =>
    Effect.scoped(Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const sql = yield* SqlClient.SqlClient
      const signals = yield* feed.commandSignals
      const queue = yield* Queue.unbounded<unknown>()
      yield* signals.pipe(Stream.runForEach((s) => Queue.offer(queue, s)), Effect.forkScoped)
      yield* within(listening(feed, "cowork_commands"), "the commands channel is listened to", 10_000)
      yield* sql`SELECT pg_notify('cowork_commands', 'bogus')`
      yield* feed.notifyCommand({ kind: "abort", sessionId: "ses_b" })
      assert.deepStrictEqual(yield* Queue.take(queue), { kind: "abort", sessionId: "ses_b" })
    })))

  it.effect("a created workflow, a resume and a started run wake schedulers at commit; workers see no signal from them", () =>
    Effect.scoped(Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const store = yield* WorkflowStore
      const changes = yield* Queue.unbounded<void>()
      const signals = yield* Queue.unbounded<unknown>()
      yield* (yield* feed.workflowChanges).pipe(Stream.runForEach(() => Queue.offer(changes, undefined)), Effect.forkScoped)
      yield* (yield* feed.commandSignals).pipe(Stream.runForEach((s) => Queue.offer(signals, s)), Effect.forkScoped)
      const { orgId } = yield* (yield* Tokens).createOrg(`wf-${globalThis.crypto.randomUUID().slice(0, 6)}`)
      yield* within(listening(feed, "cowork_commands"), "the commands channel is listened to", 10_000)
      const daily = { id: "d", type: "schedule" as const, enabled: true, schedule: { type: "daily" as const, timezone: "UTC", runAtHour: 3, runAtMinute: 0 } }
      const workflow = yield* store.create(orgId, workflowInput({ triggers: [daily] }))
      yield* Queue.take(changes)
      yield* store.setLifecycle(orgId, workflow.id, "pause").pipe(Effect.orDie)
      yield* store.setLifecycle(orgId, workflow.id, "resume").pipe(Effect.orDie)
      yield* Queue.take(changes)
      const manual = yield* store.create(orgId, workflowInput())
      yield* store.startRun(orgId, manual.id, { triggerType: "manual" }).pipe(Effect.orDie)
      yield* Queue.take(changes)
      // The run's prompt signals the workers (its own NOTIFY); nothing else reached them.
      const seen = yield* Queue.take(signals)
      assert.strictEqual((seen as { kind: string }).kind, "prompt")
      assert.strictEqual((yield* Queue.clear(changes)).length, 0, "pause and a manual-only create wake no one")
    })))
})

// A pool of ONE connection: the listening connections must not come out of it.
const onePool = PgChangeFeed.layer.pipe(Layer.provideMerge(TestDatabase.layer({ maxConnections: 1 })))

it.layer(onePool, { excludeTestServices: true })("PgChangeFeed listening connections", (it) => {
  it.effect("are not pooled: with both channels listened to, a one-connection pool still runs queries and transactions", () =>
    Effect.scoped(Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const sql = yield* SqlClient.SqlClient
      const signals = yield* Queue.unbounded<unknown>()
      yield* (yield* feed.commandSignals).pipe(Stream.runForEach((s) => Queue.offer(signals, s)), Effect.forkScoped)
      yield* (yield* feed.sessionChanges).pipe(Stream.runDrain, Effect.forkScoped)
      yield* within(listening(feed, "cowork_commands"), "the commands channel is listened to", 10_000)
      yield* within(listening(feed, "cowork_events"), "the events channel is listened to", 10_000)
      // A pooled listener holds its connection for as long as it listens: every query below would wait forever.
      yield* step("a query on the pool", sql`SELECT 1`)
      yield* step("a transaction on the pool", sql.withTransaction(sql`SELECT 1`))
      yield* step("a notification through the pool", feed.notifyCommand({ kind: "abort", sessionId: "ses_pool" }))
      assert.deepStrictEqual(yield* step("the signal arrives", Queue.take(signals)), { kind: "abort", sessionId: "ses_pool" })
    })))
})

it.layer(PgChangeFeed.layer.pipe(Layer.provideMerge(TestDatabase.layer())), { excludeTestServices: true })("PgChangeFeed subscriptions", (it) => {
  it.effect("return once the LISTEN is active: ONE notification sent right after the first subscription reaches it", () =>
    Effect.scoped(Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const sql = yield* SqlClient.SqlClient
      const changes = yield* Queue.unbounded<SessionChanged>()
      yield* (yield* feed.sessionChanges).pipe(Stream.runForEach((c) => Queue.offer(changes, c)), Effect.forkScoped)
      yield* sql`SELECT pg_notify('cowork_events', 'org_f ses_f 1')`
      assert.deepStrictEqual(yield* step("the one notification arrives", Queue.take(changes)), { orgId: "org_f", sessionId: "ses_f", lastSequence: 1 })
    })))
})

// The change feed and the delivery feed of one layer build: the process's feeds share ONE listening connection.
const sharedListener = Layer.mergeAll(PgChangeFeed.layer, PgDeliveryFeed.layer).pipe(Layer.provideMerge(TestDatabase.layer()))

it.layer(sharedListener, { excludeTestServices: true })("PgChangeFeed and PgDeliveryFeed", (it) => {
  it.effect("listen to three channels on ONE backend; a reconnect LISTENs all of them again and announces both feed channels", () =>
    Effect.scoped(Effect.gen(function*() {
      const feed = yield* ChangeFeed
      const deliveries = yield* DeliveryFeed
      const sql = yield* SqlClient.SqlClient
      const changes = yield* Queue.unbounded<SessionChanged>()
      const signals = yield* Queue.unbounded<CommandSignal>()
      const notices = yield* Queue.unbounded<{ readonly orgId: string; readonly channelBindingId: string }>()
      const resyncs = yield* Queue.unbounded<Resync>()
      yield* (yield* feed.resyncs).pipe(Stream.runForEach((r) => Queue.offer(resyncs, r)), Effect.forkScoped)
      yield* (yield* feed.sessionChanges).pipe(Stream.runForEach((c) => Queue.offer(changes, c)), Effect.forkScoped)
      yield* (yield* feed.commandSignals).pipe(Stream.runForEach((c) => Queue.offer(signals, c)), Effect.forkScoped)
      yield* (yield* deliveries.notices).pipe(Stream.runForEach((n) => Queue.offer(notices, n)), Effect.forkScoped)
      yield* within(listening(feed, "cowork_events"), "the events channel is listened to", 10_000)
      yield* within(listening(feed, "cowork_commands"), "the commands channel is listened to", 10_000)
      // A listening backend's last statement is a LISTEN (one per channel on separate connections: 3).
      const backends = listenerCount
      assert.strictEqual(yield* backends, 1, "one listening backend for three channels")
      const sendAll = (n: number) =>
        sql`SELECT pg_notify('cowork_events', ${`org_s ses_s ${n}`}), pg_notify('cowork_commands', 'prompt ses_s'),
          pg_notify('cowork_channel_deliveries', ${`org_s chb_${n}`})`.pipe(Effect.orDie)
      yield* sendAll(1)
      assert.deepStrictEqual(yield* step("the session change", Queue.take(changes)), { orgId: "org_s", sessionId: "ses_s", lastSequence: 1 })
      assert.deepStrictEqual(yield* step("the command signal", Queue.take(signals)), { kind: "prompt", sessionId: "ses_s" })
      assert.deepStrictEqual(yield* step("the delivery notice", Queue.take(notices)), { orgId: "org_s", channelBindingId: "chb_1" })

      yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
      const seen = { change: false, signal: false, notice: false }
      let n = 100
      yield* within(Effect.gen(function*() {
        n++
        yield* sendAll(n)
        yield* Effect.sleep("50 millis")
        if ((yield* Queue.clear(changes)).some((c) => c.lastSequence > 100)) seen.change = true
        if ((yield* Queue.clear(signals)).length > 0) seen.signal = true
        if ((yield* Queue.clear(notices)).some((x) => x.channelBindingId !== "chb_1")) seen.notice = true
        return seen.change && seen.signal && seen.notice
      }), "all three channels deliver again after the reconnect", 10_000)
      // Each channel is announced after its LISTEN is active, through the forwarding fiber above: a notice can arrive
      // before the last announcement is in the queue, so the announcements are awaited too.
      const announced = new Set<string>()
      yield* within(Effect.map(Queue.clear(resyncs), (more) => {
        for (const r of more) announced.add(r.channel)
        return announced.has("cowork_commands") && announced.has("cowork_events")
      }), "both feed channels announced after the reconnect", 10_000)
      assert.deepStrictEqual([...announced].sort(), ["cowork_commands", "cowork_events"], "both feed channels resync, the delivery channel is not the change feed's")
      yield* within(Effect.map(backends, (count) => count === 1), "one listening backend again", 10_000)
    })))
})

it.layer(layer)("PgTokens", (it) => {
  it.effect("bootstrap once, issue, authenticate, scope, expire and revoke", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const sql = yield* SqlClient.SqlClient
      const [a, b] = yield* Effect.all([tokens.bootstrap("acme"), tokens.bootstrap("acme")], { concurrency: "unbounded" })
      assert.strictEqual(a.orgId, b.orgId)
      const owner = a.owner ?? b.owner
      assert.isDefined(owner)
      assert.isTrue(a.owner === undefined || b.owner === undefined, "only one bootstrap issues the owner token")
      const principal = yield* tokens.authenticate(owner!.token)
      assert.deepStrictEqual([...principal.scopes].sort(), ["admin", "operator", "web"])
      assert.deepInclude(principal, { kind: "org", orgId: a.orgId })
      const stored = yield* sql<{ secret_hash: string; last_used_at: Date | null }>`
        SELECT secret_hash, last_used_at FROM cloud_api_tokens WHERE id = ${owner!.tokenId}`
      assert.notInclude(Redacted.value(owner!.token), stored[0]!.secret_hash)
      assert.match(stored[0]!.secret_hash, /^[0-9a-f]{64}$/)
      assert.isNotNull(stored[0]!.last_used_at)

      const wrongSecret = Redacted.value(owner!.token).replace(/.$/, (c) => (c === "A" ? "B" : "A"))
      assert.strictEqual((yield* Effect.flip(tokens.authenticate(Redacted.make(wrongSecret))))._tag, "Unauthorized")
      assert.strictEqual((yield* Effect.flip(tokens.authenticate(Redacted.make("occ_nope"))))._tag, "Unauthorized")

      const expired = yield* tokens.issue({ orgId: a.orgId, name: "short", scopes: ["web"], expiresInMs: -1000 })
      assert.strictEqual((yield* Effect.flip(tokens.authenticate(expired.token)))._tag, "Unauthorized")
      const web = yield* tokens.issue({ orgId: a.orgId, name: "web", scopes: ["web"] })
      assert.deepStrictEqual((yield* tokens.authenticate(web.token)).scopes, ["web"])
      const revoked = yield* tokens.revoke(web.tokenId, { orgId: a.orgId })
      assert.isNotNull(revoked.revokedAt)
      assert.deepStrictEqual(yield* tokens.revoke(web.tokenId, { orgId: a.orgId }), revoked, "revoking twice changes nothing")
      assert.strictEqual((yield* Effect.flip(tokens.revoke(web.tokenId, { orgId: "org_other" })))._tag, "NotFound")
      assert.strictEqual((yield* Effect.flip(tokens.authenticate(web.token)))._tag, "Unauthorized")
    }))
})
