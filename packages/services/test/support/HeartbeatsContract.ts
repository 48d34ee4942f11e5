import { type HeartbeatInput, Heartbeats, WorkerRegistry } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Redacted } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { bogusCredential, FRESH_MS, managedWorker, newSession, operator } from "./ControlPlaneFixtures.ts"

const input = (workerId: string, status: string, credential?: Redacted.Redacted<string>): HeartbeatInput => ({
  workerId,
  role: "worker",
  poolId: null,
  status,
  version: "1.2.3",
  region: "eu",
  capabilities: ["checkpoints"],
  currentLoad: 2,
  activeWorkIds: ["ses_a", "ses_b"],
  credential
})

/** Heartbeats: who may beat, what the row shows, and the freshness rule (age, and `stopped` is never fresh). */
export const heartbeatsContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`Heartbeats contract: ${harness.name}`, () => {
    it.effect("an unmanaged beat is listed with its fields; fresh while young, stale once old, never fresh when stopped", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const heartbeats = yield* Heartbeats
        yield* heartbeats.beat(input("w-b", "active"))
        yield* heartbeats.beat(input("w-a", "active"))
        const [a, b] = yield* heartbeats.list(FRESH_MS)
        assert.deepStrictEqual([a?.workerId, b?.workerId], ["w-a", "w-b"], "ordered by worker id")
        assert.deepInclude(a!, {
          role: "worker", status: "active", version: "1.2.3", region: "eu", currentLoad: 2, fresh: true, poolId: null
        })
        assert.deepStrictEqual([a!.capabilities, a!.activeWorkIds], [["checkpoints"], ["ses_a", "ses_b"]])
        assert.isBelow(a!.ageMs, 1_000)
        yield* harness.elapse(FRESH_MS)
        assert.deepStrictEqual((yield* heartbeats.list(FRESH_MS)).map((h) => h.fresh), [false, false])
        yield* heartbeats.beat(input("w-a", "stopped"))
        const [stopped] = yield* heartbeats.list(FRESH_MS)
        assert.deepInclude(stopped!, { status: "stopped", fresh: false })
        assert.isBelow(stopped!.ageMs, 1_000, "a recent beat, but the process said it stopped")
      })))

    it.effect("a registered worker beats only with a valid credential; unknown, revoked or retired are refused and write nothing", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const heartbeats = yield* Heartbeats
        const registry = yield* WorkerRegistry
        const refused = (beat: HeartbeatInput) => Effect.map(Effect.flip(heartbeats.beat(beat)), (e) => e._tag)
        assert.strictEqual(yield* refused(input("w-stranger", "active", bogusCredential)), "WorkerRefused")
        const worker = yield* managedWorker("w-managed")
        assert.strictEqual(yield* refused(input(worker.workerId, "active")), "WorkerRefused", "registered: credential required")
        assert.strictEqual(yield* refused(input(worker.workerId, "active", bogusCredential)), "WorkerRefused")
        assert.deepStrictEqual(yield* heartbeats.list(FRESH_MS), [], "nothing written")
        yield* heartbeats.beat(input(worker.workerId, "active", worker.credential))
        const [row] = yield* heartbeats.list(FRESH_MS)
        assert.deepInclude(row!, { workerId: worker.workerId, poolId: worker.poolId, status: "active" })
        const listed = yield* registry.listCredentials(worker.workerId, operator)
        assert.isNotNull(listed[0]!.lastUsedAt, "the beat records the credential's use")
        yield* registry.transition(worker.workerId, "pause", operator, FRESH_MS)
        yield* heartbeats.beat(input(worker.workerId, "active", worker.credential))
        assert.strictEqual((yield* heartbeats.list(FRESH_MS))[0]!.status, "paused", "the row shows the operator's lifecycle")
        yield* registry.revokeCredential(worker.workerId, worker.credentialId, operator)
        assert.strictEqual(yield* refused(input(worker.workerId, "active", worker.credential)), "WorkerRefused")
        const fresh = yield* registry.issueCredential(worker.workerId, {}, operator)
        yield* heartbeats.beat(input(worker.workerId, "active", fresh.plaintext))
        yield* registry.transition(worker.workerId, "retire", operator, FRESH_MS)
        assert.strictEqual(yield* refused(input(worker.workerId, "active", fresh.plaintext)), "WorkerRefused")
      })))

    it.effect("a row written with its own interval (an idle worker) is judged by it, in the list and the registry", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const heartbeats = yield* Heartbeats
        const registry = yield* WorkerRegistry
        const worker = yield* managedWorker("w-idle")
        // FRESH_MS is three intervals of the reader; this writer beats every 4 × FRESH_MS while idle.
        yield* heartbeats.beat({ ...input(worker.workerId, "active", worker.credential), intervalMs: 4 * FRESH_MS })
        yield* heartbeats.beat({ ...input("w-busy", "active"), intervalMs: FRESH_MS / 3 })
        yield* harness.elapse(2 * FRESH_MS)
        const byId = new Map((yield* heartbeats.list(FRESH_MS)).map((h) => [h.workerId, h]))
        assert.deepInclude(byId.get(worker.workerId)!, { status: "active", fresh: true }, "within its own intervals")
        assert.deepInclude(byId.get("w-busy")!, { status: "unhealthy", fresh: false })
        const health = Effect.map(registry.listWorkers(operator, FRESH_MS), (ws) => ws.find((w) => w.id === worker.workerId)!.health)
        assert.strictEqual(yield* health, "healthy")
        yield* harness.elapse(11 * FRESH_MS)
        assert.strictEqual(yield* health, "unhealthy", "past three of its intervals")
      })))

    it.effect("the registry's health follows the same freshness rule", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const heartbeats = yield* Heartbeats
        const registry = yield* WorkerRegistry
        const worker = yield* managedWorker("w-health")
        const health = Effect.map(registry.listWorkers(operator, FRESH_MS), (ws) => ws.find((w) => w.id === worker.workerId)!.health)
        assert.strictEqual(yield* health, "unknown")
        yield* heartbeats.beat(input(worker.workerId, "active", worker.credential))
        assert.strictEqual(yield* health, "healthy")
        yield* heartbeats.beat(input(worker.workerId, "stopped", worker.credential))
        assert.strictEqual(yield* health, "unhealthy", "stopped")
        yield* heartbeats.beat(input(worker.workerId, "active", worker.credential))
        yield* harness.elapse(FRESH_MS)
        assert.strictEqual(yield* health, "unhealthy", "old")
      })))

    it.effect("a silent worker reads unhealthy with no active work; stopped stays stopped; prune keeps the retention", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const heartbeats = yield* Heartbeats
        const day = 24 * 3600 * 1000
        const beat = (workerId: string, status: string, activeWorkIds: ReadonlyArray<string>) =>
          heartbeats.beat({ ...input(workerId, status), currentLoad: activeWorkIds.length, activeWorkIds })
        yield* beat("hb-ancient", "active", ["ses_ancient"])
        yield* harness.elapse(10 * day)
        yield* beat("hb-crashed", "active", ["ses_stale_1", "ses_stale_2"])
        yield* beat("hb-draining-crashed", "draining", ["ses_stale_3"])
        yield* beat("hb-stopped", "stopped", [])
        yield* harness.elapse(4 * FRESH_MS)
        yield* beat("hb-live", "active", ["ses_live"])

        const byId = new Map((yield* heartbeats.list(FRESH_MS)).map((row) => [row.workerId, row]))
        assert.deepInclude(byId.get("hb-live")!, { status: "active", fresh: true, currentLoad: 1 })
        assert.deepStrictEqual(byId.get("hb-live")!.activeWorkIds, ["ses_live"])
        for (const id of ["hb-crashed", "hb-draining-crashed", "hb-ancient"]) {
          const row = byId.get(id)!
          assert.deepInclude(row, { status: "unhealthy", fresh: false, currentLoad: 0 }, id)
          assert.deepStrictEqual(row.activeWorkIds, [], `${id}: a silent worker's last work list is stale`)
          assert.isAbove(row.ageMs, 3 * FRESH_MS, id)
        }
        assert.deepInclude(byId.get("hb-stopped")!, { status: "stopped", fresh: false })

        assert.strictEqual(yield* heartbeats.prune(7 * day), 1)
        assert.deepStrictEqual(
          (yield* heartbeats.list(FRESH_MS)).map((row) => row.workerId),
          ["hb-crashed", "hb-draining-crashed", "hb-live", "hb-stopped"]
        )
        assert.strictEqual(yield* heartbeats.prune(7 * day), 0)
        yield* beat("hb-crashed", "active", ["ses_new"])
        assert.deepInclude((yield* heartbeats.list(FRESH_MS)).find((row) => row.workerId === "hb-crashed")!, {
          status: "active",
          fresh: true
        }, "a worker that beats again is healthy again")
      })))

    it.effect("an org's view: only the processes serving it, and only its own sessions in activeWorkIds", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const heartbeats = yield* Heartbeats
        const registry = yield* WorkerRegistry
        const a = yield* newSession()
        const b = yield* newSession()
        yield* heartbeats.beat({ ...input("shared", "active"), activeWorkIds: [a.sessionId, b.sessionId] })
        const poolA = yield* registry.createPool({ name: "a", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 1 }, { orgId: a.orgId, actor: "a" })
        const own = yield* managedWorker("a-own", { poolId: poolA.id })
        yield* heartbeats.beat({ ...input(own.workerId, "active", own.credential), activeWorkIds: [a.sessionId] })

        const seen = (orgId: string | undefined) =>
          Effect.map(heartbeats.list(FRESH_MS, orgId), (rows) => rows.map((row) => [row.workerId, row.activeWorkIds]))
        assert.deepStrictEqual(yield* seen(a.orgId), [["a-own", [a.sessionId]], ["shared", [a.sessionId]]])
        assert.deepStrictEqual(yield* seen(b.orgId), [["shared", [b.sessionId]]], "another org's self-hosted worker is not listed")
        assert.deepStrictEqual(yield* seen(undefined), [["a-own", [a.sessionId]], ["shared", [a.sessionId, b.sessionId]]])
      })))
  })
