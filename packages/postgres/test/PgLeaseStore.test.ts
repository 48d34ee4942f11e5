import { PgCommandQueue, PgEventLog, PgLeaseStore } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { backdateLease, commandRow, createSession, enqueue, eventTypes } from "./support/WorkerFixtures.ts"

const Stores = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer).pipe(
  Layer.provideMerge(TestDatabase.layer({ maxConnections: 30 }))
)

const TTL = 60_000

it.layer(Stores, { timeout: 60_000 })("PgLeaseStore", (it) => {
  it.effect("two workers racing for one session: exactly one owns it, every round", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const sql = yield* SqlClient.SqlClient
      yield* createSession("ses_race")
      yield* enqueue("ses_race", "cmd_race")
      for (let round = 0; round < 40; round++) {
        const [a, b] = yield* Effect.all([
          leases.claim("worker-a", 1, TTL, 3),
          leases.claim("worker-b", 1, TTL, 3)
        ], { concurrency: "unbounded" })
        const winners = [...a, ...b]
        assert.strictEqual(winners.length, 1, `round ${round}: ${JSON.stringify(winners)}`)
        const row = (yield* sql<{ worker_id: string; epoch: bigint }>`SELECT worker_id, epoch FROM cloud_worker_leases WHERE session_id = 'ses_race'`)[0]!
        assert.strictEqual(row.worker_id, winners[0]!.workerId)
        assert.strictEqual(Number(row.epoch), round + 1)
        assert.strictEqual(winners[0]!.epoch, round + 1)
        yield* backdateLease("ses_race")
      }
      yield* sql`UPDATE cloud_session_commands SET status = 'acked' WHERE id = 'cmd_race'`
      yield* sql`UPDATE cloud_worker_leases SET worker_id = NULL, expires_at = '-infinity' WHERE session_id = 'ses_race'`
    }))

  it.effect("a worker whose lease was taken over has every later write refused, and none applied", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const log = yield* EventLog
      yield* createSession("ses_stale")
      yield* enqueue("ses_stale", "cmd_stale")
      const [old] = yield* leases.claim("worker-old", 1, TTL, 3)
      assert.isDefined(old)
      const running = yield* queue.next(old!)
      assert.strictEqual(Option.getOrThrow(running).id, "cmd_stale")
      yield* log.append(old!, [{ type: "session.status", payload: { status: "running", commandId: "cmd_stale" } }])
      const before = yield* eventTypes("ses_stale")

      yield* backdateLease("ses_stale")
      const [fresh] = yield* leases.claim("worker-new", 1, TTL, 3)
      assert.strictEqual(fresh!.epoch, old!.epoch + 1)
      assert.deepStrictEqual(yield* commandRow("cmd_stale"), { status: "pending", attemptCount: 1 })

      const refusedOps: Array<string> = []
      const refused = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
        Effect.flip(effect).pipe(Effect.map((error) => refusedOps.push(error._tag)))
      yield* refused(log.append(old!, [{ type: "assistant.message", payload: { messageId: "m_old", text: "late", final: true }, commandId: "cmd_stale", attempt: 1 }]))
      yield* refused(log.append(old!, [{ type: "session.idle", payload: { commandId: "cmd_stale" } }], { commandId: "cmd_stale", outcome: "acked" }))
      yield* refused(leases.renew(old!, TTL))
      yield* refused(leases.releaseIfIdle(old!))
      yield* refused(leases.expire(old!))
      yield* refused(queue.next(old!))
      assert.deepStrictEqual(refusedOps, Array(6).fill("StaleOwner"))

      assert.deepStrictEqual(yield* eventTypes("ses_stale"), before, "nothing of the stale owner reached the log")
      assert.deepStrictEqual(yield* commandRow("cmd_stale"), { status: "pending", attemptCount: 1 })
      const sql = yield* SqlClient.SqlClient
      const messages = yield* sql`SELECT 1 FROM cloud_session_projection_messages WHERE message_id = 'm_old'`
      assert.strictEqual(messages.length, 0)

      const rerun = Option.getOrThrow(yield* queue.next(fresh!))
      assert.deepStrictEqual([rerun.id, rerun.attempt, rerun.abandonedAttempts], ["cmd_stale", 2, 1])
      yield* leases.renew(fresh!, TTL)
    }))

  it.effect("releaseIfIdle keeps the lease while a command is pending and frees it when the mailbox is empty", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const log = yield* EventLog
      yield* createSession("ses_release")
      yield* enqueue("ses_release", "cmd_r1")
      yield* enqueue("ses_release", "cmd_r2")
      const [lease] = yield* leases.claim("worker-r", 4, TTL, 3)
      const first = Option.getOrThrow(yield* queue.next(lease!))
      assert.strictEqual(first.id, "cmd_r1")
      yield* log.append(lease!, [{ type: "session.idle", payload: { commandId: "cmd_r1" } }], { commandId: "cmd_r1", outcome: "acked" })
      assert.isFalse(yield* leases.releaseIfIdle(lease!))
      const second = Option.getOrThrow(yield* queue.next(lease!))
      assert.strictEqual(second.id, "cmd_r2")
      yield* log.append(lease!, [{ type: "session.idle", payload: { commandId: "cmd_r2" } }], { commandId: "cmd_r2", outcome: "acked" })
      assert.isTrue(Option.isNone(yield* queue.next(lease!)))
      assert.isTrue(yield* leases.releaseIfIdle(lease!))
      assert.deepStrictEqual(yield* leases.claim("worker-other", 4, TTL, 3), [], "nothing runnable is left")
    }))

  it.effect("a command the reaper kills settles its session: a terminal session.idle (outcome dead, reason) in the log and the projection", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const log = yield* EventLog
      const sql = yield* SqlClient.SqlClient
      yield* createSession("ses_dead_reaped")
      yield* enqueue("ses_dead_reaped", "cmd_dead_reaped")
      const [lease] = yield* leases.claim("worker-crashes", 1, TTL, 1)
      yield* queue.next(lease!)
      yield* log.append(lease!, [{ type: "session.status", payload: { status: "running", commandId: "cmd_dead_reaped" } }])
      const status = () =>
        sql<{ status: string; last_sequence: bigint }>`SELECT status, last_sequence FROM cloud_session_projections WHERE session_id = 'ses_dead_reaped'`
          .pipe(Effect.map((rows) => ({ status: rows[0]!.status, lastSequence: Number(rows[0]!.last_sequence) })))
      assert.strictEqual((yield* status()).status, "running")

      yield* backdateLease("ses_dead_reaped")
      const reaped = yield* leases.reapExpired({ batchSize: 10, drainCap: 10, maxAttempts: 1 })
      assert.deepInclude(reaped, { reaped: 1, capHit: false, requeued: 0, dead: 1 })
      assert.deepStrictEqual(yield* commandRow("cmd_dead_reaped"), { status: "dead", attemptCount: 1 })
      const events = yield* eventTypes("ses_dead_reaped")
      const last = events[events.length - 1]!
      assert.strictEqual(last.type, "session.idle")
      assert.strictEqual(last.payload.outcome, "dead")
      assert.strictEqual(last.payload.commandId, "cmd_dead_reaped")
      assert.include(String(last.payload.reason), "abandoned by worker worker-crashes")
      assert.deepStrictEqual(yield* status(), { status: "idle", lastSequence: last.sequence })
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), "the log stays contiguous")
    }))

  it.effect("a command killed when another worker takes the session over settles it the same way", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const log = yield* EventLog
      yield* createSession("ses_dead_claimed")
      yield* enqueue("ses_dead_claimed", "cmd_dead_claimed")
      const [lease] = yield* leases.claim("worker-gone", 1, TTL, 1)
      yield* queue.next(lease!)
      yield* log.append(lease!, [{ type: "session.status", payload: { status: "running", commandId: "cmd_dead_claimed" } }])
      yield* backdateLease("ses_dead_claimed")
      const [takeover] = yield* leases.claim("worker-next", 1, TTL, 1)
      assert.strictEqual(takeover?.sessionId, "ses_dead_claimed")
      assert.deepStrictEqual(yield* commandRow("cmd_dead_claimed"), { status: "dead", attemptCount: 1 })
      const events = yield* eventTypes("ses_dead_claimed")
      const last = events[events.length - 1]!
      assert.strictEqual(last.type, "session.idle")
      assert.strictEqual(last.payload.outcome, "dead")
      assert.strictEqual(last.payload.commandId, "cmd_dead_claimed")
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ status: string }>`SELECT status FROM cloud_session_projections WHERE session_id = 'ses_dead_claimed'`
      assert.strictEqual(rows[0]!.status, "idle")
    }))

  it.effect("the reaper recovers expired leases within the drain cap, requeues and finally kills commands", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const sql = yield* SqlClient.SqlClient
      const ids = Array.from({ length: 25 }, (_, i) => `ses_reap_${String(i).padStart(2, "0")}`)
      for (const id of ids) {
        yield* createSession(id)
        yield* enqueue(id, `cmd_${id}`)
      }
      const claimed = yield* leases.claim("worker-crashed", 25, TTL, 2)
      assert.strictEqual(claimed.length, 25)
      for (const lease of claimed) yield* queue.next(lease)
      yield* sql`UPDATE cloud_worker_leases SET expires_at = now() - interval '1 second' WHERE session_id LIKE 'ses_reap_%'`

      const first = yield* leases.reapExpired({ batchSize: 4, drainCap: 10, maxAttempts: 2 })
      assert.deepInclude(first, { reaped: 10, capHit: true, requeued: 10, dead: 0 })
      const second = yield* leases.reapExpired({ batchSize: 4, drainCap: 10, maxAttempts: 2 })
      assert.deepInclude(second, { reaped: 10, capHit: true, requeued: 10, dead: 0 })
      const third = yield* leases.reapExpired({ batchSize: 4, drainCap: 10, maxAttempts: 2 })
      assert.deepInclude(third, { reaped: 5, capHit: false, requeued: 5, dead: 0 })
      assert.deepInclude(yield* leases.reapExpired({ batchSize: 4, drainCap: 10, maxAttempts: 2 }), {
        reaped: 0, capHit: false, requeued: 0, dead: 0
      })
      const leaseRows = yield* sql<{ worker_id: string | null; epoch: bigint }>`SELECT worker_id, epoch FROM cloud_worker_leases WHERE session_id LIKE 'ses_reap_%'`
      assert.isTrue(leaseRows.every((row) => row.worker_id === null && Number(row.epoch) === 2))
      assert.deepStrictEqual(yield* commandRow("cmd_ses_reap_00"), { status: "pending", attemptCount: 1 })

      // The second attempt is abandoned too: with max attempts 2 the command is dead.
      const again = yield* leases.claim("worker-crashed-2", 25, TTL, 2)
      assert.strictEqual(again.length, 25)
      for (const lease of again) yield* queue.next(lease)
      yield* sql`UPDATE cloud_worker_leases SET expires_at = now() - interval '1 second' WHERE session_id LIKE 'ses_reap_%'`
      const final = yield* leases.reapExpired({ batchSize: 50, drainCap: 100, maxAttempts: 2 })
      assert.deepInclude(final, { reaped: 25, capHit: false, requeued: 0, dead: 25 })
      assert.deepStrictEqual(yield* commandRow("cmd_ses_reap_00"), { status: "dead", attemptCount: 2 })
      assert.deepStrictEqual(yield* leases.claim("worker-x", 25, TTL, 2), [], "dead commands are not runnable")
    }))

  it.effect("a claim takes each runnable session once, whatever its number of pending commands, passing over busy ones", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      // Whatever earlier tests left runnable is taken aside first (held by a live lease).
      yield* leases.claim("worker-sweep", 1_000, TTL, 3)
      for (const id of ["ses_once_0busy", "ses_once_a_many", "ses_once_b", "ses_once_c"]) yield* createSession(id)
      yield* enqueue("ses_once_0busy", "cmd_once_busy_1")
      yield* enqueue("ses_once_0busy", "cmd_once_busy_2")
      const busy = yield* leases.claim("worker-busy", 1, TTL, 3)
      assert.deepStrictEqual(busy.map((l) => l.sessionId), ["ses_once_0busy"])
      for (const n of [1, 2, 3]) yield* enqueue("ses_once_a_many", `cmd_once_many_${n}`)
      yield* enqueue("ses_once_b", "cmd_once_b")
      yield* enqueue("ses_once_c", "cmd_once_c")
      const two = yield* leases.claim("worker-f", 2, TTL, 3)
      assert.strictEqual(new Set(two.map((l) => l.sessionId)).size, 2, "two distinct sessions")
      assert.notInclude(two.map((l) => l.sessionId), "ses_once_0busy")
      const rest = yield* leases.claim("worker-f", 10, TTL, 3)
      assert.deepStrictEqual(
        [...two, ...rest].map((l) => l.sessionId).sort(),
        ["ses_once_a_many", "ses_once_b", "ses_once_c"],
        "every runnable session, each once"
      )
      assert.deepStrictEqual(yield* leases.claim("worker-g", 10, TTL, 3), [], "every runnable session is held")
    }))

  it.effect("reapers and a claimer racing over dying commands: each is dead-lettered exactly once on its log (24 sessions, 4 rounds)", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const sql = yield* SqlClient.SqlClient
      for (let round = 0; round < 4; round++) {
        const ids = Array.from({ length: 6 }, (_, i) => `ses_dlrace_${round}_${i}`)
        for (const id of ids) {
          yield* createSession(id)
          yield* enqueue(id, `cmd_${id}`)
        }
        // Each command running on its last attempt under a lease that then expires.
        const held = (yield* leases.claim(`worker-dying-${round}`, 1_000, TTL, 1)).filter((lease) => lease.sessionId.startsWith(`ses_dlrace_${round}_`))
        assert.strictEqual(held.length, 6)
        for (const lease of held) yield* queue.next(lease)
        yield* sql`UPDATE cloud_worker_leases SET expires_at = now() - interval '1 second' WHERE session_id LIKE ${`ses_dlrace_${round}_%`}`
        // Two reapers (small batches, so their transactions interleave) and a claimer taking sessions over, at once.
        yield* Effect.all([
          leases.reapExpired({ batchSize: 1, drainCap: 100, maxAttempts: 1 }),
          leases.reapExpired({ batchSize: 2, drainCap: 100, maxAttempts: 1 }),
          leases.claim(`worker-next-${round}`, 3, TTL, 1)
        ], { concurrency: "unbounded" })
        for (const id of ids) {
          assert.deepStrictEqual(yield* commandRow(`cmd_${id}`), { status: "dead", attemptCount: 1 })
          const events = yield* eventTypes(id)
          const dead = events.filter((event) => event.type === "command.dead_lettered")
          assert.deepStrictEqual(dead.map((event) => event.payload), [{
            commandId: `cmd_${id}`,
            kind: "prompt",
            reason: `attempt 1 abandoned by worker worker-dying-${round}`,
            cause: "attempts_exhausted",
            attempts: 1
          }], id)
          assert.deepStrictEqual(events.filter((event) => event.type === "session.idle").map((event) => event.sequence), [dead[0]!.sequence + 1], id)
          assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), `${id}: the log stays contiguous`)
        }
      }
    }))
})
