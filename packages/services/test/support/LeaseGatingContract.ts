import { EventLog, Heartbeats, LeaseStore, WorkerRegistry } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import {
  bogusCredential,
  claim,
  claimOne,
  expectStale,
  FRESH_MS,
  managedWorker,
  operator,
  runnableSession,
  TTL_MS
} from "./ControlPlaneFixtures.ts"

const beat = (workerId: string, status: string) =>
  Effect.flatMap(Effect.service(Heartbeats), (heartbeats) =>
    heartbeats.beat({
      workerId,
      role: "worker",
      poolId: null,
      status,
      version: "test",
      region: null,
      capabilities: [],
      currentLoad: 0,
      activeWorkIds: []
    }))

/**
 * Who may claim, and how much: the worker service plane's rules inside `LeaseStore.claim`, on every store. An
 * unmanaged worker (no registration, no credential) claims freely; a managed one only while active in an active
 * pool with a valid credential, within the pool's maxConcurrentWork and maxWorkers.
 */
export const leaseGatingContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`LeaseStore gating contract: ${harness.name}`, () => {
    it.effect("a managed worker claims with its credential only; a paused worker or pool, or a revoked credential, claims nothing", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const worker = yield* managedWorker("w-managed")
        yield* runnableSession()
        assert.deepStrictEqual(yield* claim(worker.workerId, 10), [], "registered: no credential, no claim")
        assert.deepStrictEqual(yield* claim(worker.workerId, 10, bogusCredential), [], "a credential that is not its own")
        yield* registry.transition(worker.workerId, "pause", operator, FRESH_MS)
        assert.deepStrictEqual(yield* claim(worker.workerId, 10, worker.credential), [], "a paused worker")
        yield* registry.transition(worker.workerId, "resume", operator, FRESH_MS)
        yield* registry.updatePool(worker.poolId, { status: "paused" }, operator)
        assert.deepStrictEqual(yield* claim(worker.workerId, 10, worker.credential), [], "a paused pool")
        yield* registry.updatePool(worker.poolId, { status: "active" }, operator)
        yield* registry.revokeCredential(worker.workerId, worker.credentialId, operator)
        assert.deepStrictEqual(yield* claim(worker.workerId, 10, worker.credential), [], "a revoked credential")
        const fresh = yield* registry.issueCredential(worker.workerId, { expiresInSeconds: 60 }, operator)
        yield* harness.elapse(61_000)
        assert.deepStrictEqual(yield* claim(worker.workerId, 10, fresh.plaintext), [], "an expired credential")
        const valid = yield* registry.issueCredential(worker.workerId, {}, operator)
        assert.strictEqual((yield* claim(worker.workerId, 10, valid.plaintext)).length, 1, "active, active pool, valid credential")
      })))

    it.effect("an unmanaged worker claims freely, nothing while its own heartbeat says draining; a credential from an unregistered worker claims nothing", () =>
      onFreshStore(harness, Effect.gen(function*() {
        yield* runnableSession()
        assert.deepStrictEqual(yield* claim("w-stranger", 10, bogusCredential), [])
        yield* beat("w-free", "draining")
        assert.deepStrictEqual(yield* claim("w-free", 10), [], "draining")
        yield* beat("w-free", "active")
        assert.strictEqual((yield* claim("w-free", 10)).length, 1)
      })))

    it.effect("maxConcurrentWork caps the pool's live leases; maxWorkers caps the workers holding work", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const a = yield* managedWorker("w-a", { maxWorkers: 2, maxConcurrentWork: 3 })
        const b = yield* managedWorker("w-b", { poolId: a.poolId })
        // Activation honours maxWorkers too; lowering it afterwards leaves the claim as the only gate.
        yield* (yield* WorkerRegistry).updatePool(a.poolId, { maxWorkers: 1 }, operator)
        for (let i = 0; i < 6; i++) yield* runnableSession()
        assert.strictEqual((yield* claim(a.workerId, 2, a.credential)).length, 2, "its own limit")
        assert.deepStrictEqual(yield* claim(b.workerId, 10, b.credential), [], "maxWorkers=1: a second worker gets nothing")
        assert.strictEqual((yield* claim(a.workerId, 10, a.credential)).length, 1, "up to maxConcurrentWork=3 in all")
        assert.deepStrictEqual(yield* claim(a.workerId, 10, a.credential), [], "the pool is full")
        yield* harness.elapse(TTL_MS)
        assert.strictEqual((yield* claim(b.workerId, 10, b.credential)).length, 3, "expired leases free the pool")
      })))

    it.effect("a paused worker cannot renew, a draining one can; a revoked worker's writes are refused", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const leases = yield* LeaseStore
        const worker = yield* managedWorker("w-fenced")
        const { sessionId } = yield* runnableSession()
        const [lease] = yield* claim(worker.workerId, 1, worker.credential)
        assert.strictEqual(lease?.sessionId, sessionId)
        yield* registry.transition(worker.workerId, "drain", operator, FRESH_MS)
        yield* leases.renew(lease!, TTL_MS)
        yield* registry.transition(worker.workerId, "pause", operator, FRESH_MS)
        yield* expectStale(leases.renew(lease!, TTL_MS), lease!, "renew")
        yield* registry.transition(worker.workerId, "revoke", operator, FRESH_MS)
        yield* expectStale((yield* EventLog).append(lease!, [{ type: "session.idle", payload: {} }]), lease!, "append")
        const taken = yield* claimOne("w-unmanaged", sessionId)
        assert.strictEqual(taken.epoch, lease!.epoch + 1, "revoke expired its leases at once")
      })))
  
    it.effect("a worker of an org's self-hosted pool claims only that org's sessions; an unmanaged one claims any org's", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const own = yield* runnableSession()
        const other = yield* runnableSession()
        const pool = yield* registry.createPool(
          { name: "tenant", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 10 },
          { orgId: own.orgId, actor: "test:org" }
        )
        assert.strictEqual(pool.orgId, own.orgId)
        const worker = yield* managedWorker("tenant-worker", { poolId: pool.id })
        const claimed = yield* claim(worker.workerId, 10, worker.credential)
        assert.deepStrictEqual(claimed.map((lease) => lease.sessionId), [own.sessionId], "another org's session stays unclaimed")
        assert.deepStrictEqual((yield* claim("unmanaged", 10)).map((lease) => lease.sessionId), [other.sessionId])
      })))
  })
