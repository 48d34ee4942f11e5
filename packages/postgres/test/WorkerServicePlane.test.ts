import { PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { PgWorkerRegistry } from "@cowork/postgres"
import { CommandQueue, EventLog, type HeartbeatInput, Heartbeats, LeaseStore, WorkerRegistry } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { createSession, enqueue } from "./support/WorkerFixtures.ts"

const Env = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer, PgWorkerRegistry.layer).pipe(
  Layer.provideMerge(TestDatabase.layer({ maxConnections: 40 }))
)

const TTL = 60_000
const operator = { orgId: null, actor: "test:operator" }

const beatOf = (workerId: string, credential?: Redacted.Redacted<string>): HeartbeatInput => ({
  workerId,
  role: "worker",
  poolId: null,
  status: "active",
  version: "test",
  region: "eu-test",
  capabilities: ["prompt"],
  currentLoad: 0,
  activeWorkIds: [],
  credential
})

let counter = 0
const unique = (prefix: string) => `${prefix}_${++counter}_${globalThis.crypto.randomUUID().slice(0, 6)}`

/** A pool with `workers` registered, active, credentialed workers. */
const poolWithWorkers = (workers: number, limits: { maxWorkers?: number; maxConcurrentWork?: number } = {}) =>
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry
    const pool = yield* registry.createPool({
      name: unique("pool"),
      mode: "self_hosted",
      maxWorkers: limits.maxWorkers ?? workers,
      maxConcurrentWork: limits.maxConcurrentWork ?? 1_000,
      region: "eu-test",
      capabilities: ["prompt"]
    }, operator)
    const registered = []
    for (let i = 0; i < workers; i++) {
      const worker = yield* registry.registerWorker({ poolId: pool.id, id: unique("wrk") }, operator)
      const issued = yield* registry.issueCredential(worker.id, {}, operator)
      yield* registry.transition(worker.id, "activate", operator, 15_000)
      registered.push({ id: worker.id, credential: issued.plaintext, credentialId: issued.credential.id })
    }
    return { pool, workers: registered }
  })

/** `count` sessions, each with a pending prompt. */
const runnableSessions = (count: number) =>
  Effect.forEach(Array.from({ length: count }, () => unique("ses")), (sessionId) =>
    Effect.gen(function*() {
      yield* createSession(sessionId)
      yield* enqueue(sessionId, `cmd_${sessionId}`)
      return sessionId
    }))

const liveLeasesOf = (workerIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ n: number }>(
      `SELECT count(*)::int AS n FROM cloud_worker_leases WHERE worker_id = ANY($1::text[]) AND expires_at > clock_timestamp()`,
      [[...workerIds]]
    )
    return Number(rows[0]!.n)
  })

const auditActions = (target: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ action: string }>(`SELECT action FROM cloud_audit_events WHERE target = $1 ORDER BY id`, [target])
    return rows.map((row) => row.action)
  })

it.layer(Env, { timeout: 60_000, excludeTestServices: true })("worker service plane on Postgres", (it) => {
  it.effect("lifecycle follows the transition table; an illegal action names both states; every change is audited", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const pool = yield* registry.createPool({ name: "lifecycle", mode: "saas_operated", maxWorkers: 2, maxConcurrentWork: 4 }, operator)
      const worker = yield* registry.registerWorker({ poolId: pool.id, id: unique("wrk") }, operator)
      assert.strictEqual(worker.status, "pending")
      assert.strictEqual(worker.health, "unknown")
      const illegal = yield* Effect.flip(registry.transition(worker.id, "drain", operator, 15_000))
      assert.strictEqual(illegal._tag, "IllegalTransition")
      if (illegal._tag === "IllegalTransition") assert.deepStrictEqual([illegal.from, illegal.to], ["pending", "draining"])
      for (const [action, expected] of [["activate", "active"], ["drain", "draining"], ["pause", "paused"], ["resume", "active"], ["pause", "paused"], ["retire", "retired"]] as const) {
        assert.strictEqual((yield* registry.transition(worker.id, action, operator, 15_000)).status, expected)
      }
      const terminal = yield* Effect.flip(registry.transition(worker.id, "resume", operator, 15_000))
      assert.strictEqual(terminal._tag, "IllegalTransition")
      const noCredential = yield* Effect.flip(registry.issueCredential(worker.id, {}, operator))
      assert.strictEqual(noCredential._tag, "Conflict", "retired workers get no new credentials")
      assert.deepStrictEqual(yield* auditActions(worker.id), [
        "worker.registered", "worker.active", "worker.draining", "worker.paused", "worker.active", "worker.paused", "worker.retired"
      ])
    }))

  it.effect("activation honours the pool's maxWorkers", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const { pool } = yield* poolWithWorkers(1, { maxWorkers: 1 })
      const extra = yield* registry.registerWorker({ poolId: pool.id, id: unique("wrk") }, operator)
      const refused = yield* Effect.flip(registry.transition(extra.id, "activate", operator, 15_000))
      assert.strictEqual(refused._tag, "Conflict")
    }))

  it.effect("credentials: ocw_ plaintext once, only a hash stored, rotation links, old secret refused at heartbeat after revoke", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const heartbeats = yield* Heartbeats
      const sql = yield* SqlClient.SqlClient
      const { workers: [worker] } = yield* poolWithWorkers(1)
      const plaintext = Redacted.value(worker!.credential)
      assert.match(plaintext, /^ocw_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/)
      const stored = yield* sql.unsafe<{ secret_hash: string }>(`SELECT secret_hash FROM cloud_worker_credentials WHERE id = $1`, [worker!.credentialId])
      const secret = plaintext.split("_").slice(2).join("_")
      assert.notInclude(stored[0]!.secret_hash, secret)
      const dump = yield* sql.unsafe<{ row: string }>(`SELECT row_to_json(c)::text AS row FROM cloud_worker_credentials c`)
      assert.isFalse(dump.some((r) => r.row.includes(secret)), "the plaintext secret is nowhere in the table")

      yield* heartbeats.beat(beatOf(worker!.id, worker!.credential))
      const rotated = yield* registry.rotateCredential(worker!.id, worker!.credentialId, {}, operator)
      assert.strictEqual(rotated.credential.replacesId, worker!.credentialId)
      const views = yield* registry.listCredentials(worker!.id, operator)
      assert.strictEqual(views.find((c) => c.id === worker!.credentialId)!.replacedById, rotated.credential.id)
      assert.isNotNull(views.find((c) => c.id === worker!.credentialId)!.lastUsedAt)

      // Until the old one is revoked both work (the roll onto the new secret), then only the new one.
      yield* heartbeats.beat(beatOf(worker!.id, rotated.plaintext))
      yield* heartbeats.beat(beatOf(worker!.id, worker!.credential))
      yield* registry.revokeCredential(worker!.id, worker!.credentialId, operator)
      const refused = yield* Effect.flip(heartbeats.beat(beatOf(worker!.id, worker!.credential)))
      assert.strictEqual(refused._tag, "WorkerRefused")
      assert.include(refused.reason, "revoked")
      yield* heartbeats.beat(beatOf(worker!.id, rotated.plaintext))

      // A rotation with graceSeconds 0 cuts the old secret off at once.
      const second = yield* registry.rotateCredential(worker!.id, rotated.credential.id, { graceSeconds: 0 }, operator)
      assert.strictEqual((yield* Effect.flip(heartbeats.beat(beatOf(worker!.id, rotated.plaintext))))._tag, "WorkerRefused")
      yield* heartbeats.beat(beatOf(worker!.id, second.plaintext))

      // Registered workers need a credential; unregistered ones may not present one; a forged secret fails.
      assert.strictEqual((yield* Effect.flip(heartbeats.beat(beatOf(worker!.id))))._tag, "WorkerRefused")
      assert.strictEqual((yield* Effect.flip(heartbeats.beat(beatOf("not-registered", second.plaintext))))._tag, "WorkerRefused")
      const forged = Redacted.make(`ocw_${second.credential.id}_${"x".repeat(43)}`)
      assert.strictEqual((yield* Effect.flip(heartbeats.beat(beatOf(worker!.id, forged))))._tag, "WorkerRefused")
      yield* heartbeats.beat(beatOf("unmanaged-worker"))

      assert.deepStrictEqual(
        (yield* auditActions(worker!.credentialId)),
        ["worker_credential.issued", "worker_credential.last_used", "worker_credential.rotated", "worker_credential.revoked"]
      )
      assert.deepStrictEqual(
        (yield* auditActions(rotated.credential.id)),
        ["worker_credential.issued", "worker_credential.last_used", "worker_credential.rotated"]
      )
    }))

  it.effect("an expired credential is refused at heartbeat and claim", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const heartbeats = yield* Heartbeats
      const leases = yield* LeaseStore
      const sql = yield* SqlClient.SqlClient
      const { workers: [worker] } = yield* poolWithWorkers(1)
      yield* runnableSessions(1)
      yield* sql.unsafe(`UPDATE cloud_worker_credentials SET expires_at = now() - interval '1 second' WHERE id = $1`, [worker!.credentialId])
      assert.strictEqual((yield* Effect.flip(heartbeats.beat(beatOf(worker!.id, worker!.credential))))._tag, "WorkerRefused")
      assert.deepStrictEqual(yield* leases.claim(worker!.id, 4, TTL, 3, worker!.credential), [])
      const fresh = yield* registry.issueCredential(worker!.id, { expiresInSeconds: 60 }, operator)
      assert.strictEqual((yield* leases.claim(worker!.id, 1, TTL, 3, fresh.plaintext)).length, 1)
    }))

  it.effect("claim SQL: pending, paused, draining and revoked workers claim nothing; unmanaged workers claim as before", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const leases = yield* LeaseStore
      const { pool, workers: [worker] } = yield* poolWithWorkers(1, { maxWorkers: 3 })
      yield* runnableSessions(3)
      const pending = yield* registry.registerWorker({ poolId: pool.id, id: unique("wrk") }, operator)
      const pendingCredential = yield* registry.issueCredential(pending.id, {}, operator)
      assert.deepStrictEqual(yield* leases.claim(pending.id, 4, TTL, 3, pendingCredential.plaintext), [], "pending claims nothing")
      assert.deepStrictEqual(yield* leases.claim(worker!.id, 4, TTL, 3), [], "a registered worker without its credential claims nothing")
      assert.deepStrictEqual(yield* leases.claim(worker!.id, 4, TTL, 3, Redacted.make("garbage")), [])
      for (const action of ["pause", "drain"] as const) {
        yield* registry.transition(worker!.id, action, operator, 15_000)
        assert.deepStrictEqual(yield* leases.claim(worker!.id, 4, TTL, 3, worker!.credential), [], `${action} claims nothing`)
      }
      yield* registry.transition(worker!.id, "resume", operator, 15_000)
      yield* registry.updatePool(pool.id, { status: "draining" }, operator)
      assert.deepStrictEqual(yield* leases.claim(worker!.id, 4, TTL, 3, worker!.credential), [], "a draining pool claims nothing")
      yield* registry.updatePool(pool.id, { status: "active" }, operator)
      assert.strictEqual((yield* leases.claim(worker!.id, 1, TTL, 3, worker!.credential)).length, 1)
      yield* registry.transition(worker!.id, "revoke", operator, 15_000)
      assert.deepStrictEqual(yield* leases.claim(worker!.id, 4, TTL, 3, worker!.credential), [], "revoked claims nothing")
      const unmanaged = yield* leases.claim(unique("unmanaged"), 4, TTL, 3)
      assert.isAtLeast(unmanaged.length, 2, "an unregistered worker without a credential claims as before")
    }))

  it.effect("draining renews its current leases; paused stops renewing; a revoked worker's in-flight writes are stale", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const log = yield* EventLog
      const { workers: [worker] } = yield* poolWithWorkers(1)
      yield* runnableSessions(1)
      const [lease] = yield* leases.claim(worker!.id, 1, TTL, 3, worker!.credential)
      const command = yield* queue.next(lease!)
      assert.strictEqual(command._tag, "Some")

      yield* registry.transition(worker!.id, "drain", operator, 15_000)
      yield* leases.renew(lease!, TTL)
      yield* log.append(lease!, [{ type: "session.status", payload: { status: "running" } }])

      yield* registry.transition(worker!.id, "pause", operator, 15_000)
      const paused = yield* Effect.flip(leases.renew(lease!, TTL))
      assert.strictEqual(paused.operation, "renew")

      yield* registry.transition(worker!.id, "revoke", operator, 15_000)
      const append = yield* Effect.exit(log.append(lease!, [{ type: "session.status", payload: { status: "running" } }]))
      assert.isTrue(Exit.isFailure(append))
      const ack = yield* Effect.flip(log.append(lease!, [{ type: "session.idle", payload: {} }], {
        commandId: command._tag === "Some" ? command.value.id : "",
        outcome: "acked"
      }))
      assert.strictEqual(ack._tag, "StaleOwner")
      assert.strictEqual((yield* Effect.flip(queue.next(lease!)))._tag, "StaleOwner")
      // Its lease was expired by the revoke: another worker recovers the session at once.
      const [taken] = yield* leases.claim(unique("unmanaged"), 1, TTL, 3)
      assert.strictEqual(taken?.sessionId, lease!.sessionId)
    }))

  it.effect("pool maxConcurrentWork is never exceeded under many concurrent claimers; maxWorkers caps the working workers", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const leases = yield* LeaseStore
      const { pool, workers } = yield* poolWithWorkers(6, { maxConcurrentWork: 7 })
      yield* runnableSessions(40)
      const claimers = workers.flatMap((worker) => Array.from({ length: 4 }, () => worker))
      const claimed = yield* Effect.forEach(claimers, (worker) => leases.claim(worker.id, 3, TTL, 3, worker.credential), {
        concurrency: "unbounded"
      })
      const total = claimed.reduce((sum, batch) => sum + batch.length, 0)
      assert.strictEqual(total, 7, "exactly maxConcurrentWork leases granted")
      assert.strictEqual(yield* liveLeasesOf(workers.map((w) => w.id)), 7)
      // Another round changes nothing while they are held.
      const again = yield* Effect.forEach(claimers, (worker) => leases.claim(worker.id, 3, TTL, 3, worker.credential), {
        concurrency: "unbounded"
      })
      assert.strictEqual(again.reduce((sum, batch) => sum + batch.length, 0), 0)

      // maxWorkers: with room for work but a cap of 2 working workers, idle workers get nothing.
      const second = yield* poolWithWorkers(4, { maxConcurrentWork: 100 })
      yield* registry.updatePool(second.pool.id, { maxWorkers: 2 }, operator)
      yield* Effect.forEach(second.workers, (worker) => leases.claim(worker.id, 2, TTL, 3, worker.credential), { concurrency: "unbounded" })
      const sql = yield* SqlClient.SqlClient
      const working = yield* sql.unsafe<{ n: number }>(
        `SELECT count(DISTINCT worker_id)::int AS n FROM cloud_worker_leases WHERE worker_id = ANY($1::text[]) AND expires_at > clock_timestamp()`,
        [second.workers.map((w) => w.id)]
      )
      assert.isAtMost(Number(working[0]!.n), 2)
      assert.isAtLeast(Number(working[0]!.n), 1)
      void pool
    }))
})
