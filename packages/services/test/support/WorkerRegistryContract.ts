import type { WorkerAction, WorkerLifecycle } from "@cowork/domain"
import { WorkerRegistry } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Redacted } from "effect"

/**
 * What every WorkerRegistry does, run against the in-memory layer and the Postgres one: the lifecycle transition
 * table (every state × every action), maxWorkers on activate/resume, and credential issue / rotate / revoke with
 * the plaintext returned once and never listed. `storedCredentials`, when given, dumps what the store keeps so the
 * secret can be checked to appear only as its sha256.
 */

const operator = { orgId: null, actor: "test:contract" }
const FRESH_MS = 15_000

const ACTIONS: ReadonlyArray<WorkerAction> = ["activate", "pause", "drain", "resume", "retire", "revoke"]

/** The table from docs/runbooks/workers.md: the state each action leads to from each state, or undefined (409). */
const TABLE: Readonly<Record<WorkerLifecycle, Partial<Record<WorkerAction, WorkerLifecycle>>>> = {
  pending: { activate: "active", retire: "retired", revoke: "revoked" },
  active: { pause: "paused", drain: "draining", revoke: "revoked" },
  draining: { pause: "paused", resume: "active", retire: "retired", revoke: "revoked" },
  paused: { drain: "draining", resume: "active", retire: "retired", revoke: "revoked" },
  retired: {},
  revoked: {}
}

/** The actions that take a fresh `pending` worker to each state. */
const PATH: Readonly<Record<WorkerLifecycle, ReadonlyArray<WorkerAction>>> = {
  pending: [],
  active: ["activate"],
  draining: ["activate", "drain"],
  paused: ["activate", "pause"],
  retired: ["activate", "drain", "retire"],
  revoked: ["revoke"]
}

export const workerRegistryContract = <E, R = never>(
  name: string,
  registryLayer: Layer.Layer<WorkerRegistry | R, E>,
  storedCredentials?: Effect.Effect<string, never, R>,
  /** Makes the org exist where the store checks it (Postgres). */
  seedOrg: (orgId: string) => Effect.Effect<void, never, R> = () => Effect.void
) =>
  layer(registryLayer, { timeout: 60_000 })(`WorkerRegistry contract: ${name}`, (it) => {
    it.effect("the transition table: every state × action moves as documented or fails IllegalTransition naming both", () =>
      Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const pool = yield* registry.createPool({ name: "table", mode: "self_hosted", maxWorkers: 100, maxConcurrentWork: 4 }, operator)
        let n = 0
        for (const [from, moves] of Object.entries(TABLE) as Array<[WorkerLifecycle, (typeof TABLE)[WorkerLifecycle]]>) {
          for (const action of ACTIONS) {
            const worker = yield* registry.registerWorker({ poolId: pool.id, id: `t-${name}-${n++}` }, operator)
            assert.strictEqual(worker.status, "pending")
            for (const step of PATH[from]) yield* registry.transition(worker.id, step, operator, FRESH_MS)
            const outcome = yield* Effect.result(registry.transition(worker.id, action, operator, FRESH_MS))
            const expected = moves[action]
            if (expected === undefined) {
              assert.isTrue(outcome._tag === "Failure", `${from} --${action}--> should be refused`)
              const error = outcome._tag === "Failure" ? outcome.failure : undefined
              assert.strictEqual(error?._tag, "IllegalTransition", `${from} --${action}-->`)
              assert.deepInclude(error as object, { workerId: worker.id, action, from })
            } else {
              assert.isTrue(outcome._tag === "Success", `${from} --${action}--> should be allowed`)
              assert.strictEqual(outcome._tag === "Success" ? outcome.success.status : undefined, expected, `${from} --${action}-->`)
            }
          }
        }
        const unknown = yield* Effect.flip(registry.transition("no-such-worker", "activate", operator, FRESH_MS))
        assert.strictEqual(unknown._tag, "NotFound")
      }))

    it.effect("activate and resume honour the pool's maxWorkers (active + draining)", () =>
      Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const pool = yield* registry.createPool({ name: "small", mode: "saas_operated", maxWorkers: 1, maxConcurrentWork: 4 }, operator)
        const first = yield* registry.registerWorker({ poolId: pool.id, id: `cap-${name}-1` }, operator)
        const second = yield* registry.registerWorker({ poolId: pool.id, id: `cap-${name}-2` }, operator)
        yield* registry.transition(first.id, "activate", operator, FRESH_MS)
        yield* registry.transition(first.id, "drain", operator, FRESH_MS)
        assert.strictEqual((yield* Effect.flip(registry.transition(second.id, "activate", operator, FRESH_MS)))._tag, "Conflict")
        yield* registry.transition(first.id, "pause", operator, FRESH_MS)
        assert.strictEqual((yield* registry.transition(second.id, "activate", operator, FRESH_MS)).status, "active")
        assert.strictEqual((yield* Effect.flip(registry.transition(first.id, "resume", operator, FRESH_MS)))._tag, "Conflict")
        const unknownPool = yield* Effect.flip(registry.registerWorker({ poolId: "pool_missing" }, operator))
        assert.strictEqual(unknownPool._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(registry.registerWorker({ poolId: pool.id, id: first.id }, operator)))._tag, "Conflict")
      }))

    it.effect("credentials: issued once in plaintext, listed as metadata, rotated with a link, revoked at once", () =>
      Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const pool = yield* registry.createPool({ name: "creds", mode: "self_hosted", maxWorkers: 4, maxConcurrentWork: 4 }, operator)
        const worker = yield* registry.registerWorker({ poolId: pool.id, id: `cred-${name}` }, operator)

        const issued = yield* registry.issueCredential(worker.id, { expiresInSeconds: 3_600 }, operator)
        const plaintext = Redacted.value(issued.plaintext)
        const prefix = `ocw_${issued.credential.id}_`
        assert.isTrue(plaintext.startsWith(prefix), plaintext.slice(0, 4))
        const secret = plaintext.slice(prefix.length)
        assert.isAtLeast(secret.length, 32)
        assert.deepInclude(issued.credential, { workerId: worker.id, revokedAt: null, replacesId: null, replacedById: null })
        assert.isAbove(issued.credential.scopes.length, 0)
        const lifetime = Date.parse(issued.credential.expiresAt) - Date.parse(issued.credential.createdAt)
        assert.approximately(lifetime, 3_600_000, 2_000)

        const rotated = yield* registry.rotateCredential(worker.id, issued.credential.id, { graceSeconds: 60 }, operator)
        assert.strictEqual(rotated.credential.replacesId, issued.credential.id)
        assert.notStrictEqual(Redacted.value(rotated.plaintext), plaintext)
        const afterRotate = yield* registry.listCredentials(worker.id, operator)
        const old = afterRotate.find((c) => c.id === issued.credential.id)!
        assert.strictEqual(old.replacedById, rotated.credential.id)
        assert.isNull(old.revokedAt, "the old credential stays valid until revoked")
        assert.isAtMost(Date.parse(old.expiresAt) - Date.parse(rotated.credential.createdAt), 62_000, "grace shortens its expiry")

        const revoked = yield* registry.revokeCredential(worker.id, issued.credential.id, operator)
        assert.isNotNull(revoked.revokedAt)
        const again = yield* registry.revokeCredential(worker.id, issued.credential.id, operator)
        assert.strictEqual(again.revokedAt, revoked.revokedAt, "revoking twice keeps the first time")
        assert.strictEqual(
          (yield* Effect.flip(registry.rotateCredential(worker.id, issued.credential.id, {}, operator)))._tag,
          "Conflict",
          "a revoked credential cannot be rotated"
        )
        assert.strictEqual((yield* Effect.flip(registry.revokeCredential(worker.id, "nope", operator)))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(registry.listCredentials("no-such-worker", operator)))._tag, "NotFound")

        // Never listed again, in any field; the store keeps only the hash.
        const listed = JSON.stringify(yield* registry.listCredentials(worker.id, operator))
        assert.notInclude(listed, secret)
        assert.notInclude(listed, Redacted.value(rotated.plaintext).split("_").slice(2).join("_"))
        if (storedCredentials !== undefined) {
          const stored = yield* storedCredentials
          assert.notInclude(stored, secret)
          const Crypto = yield* Effect.promise(() => import("node:crypto"))
          assert.include(stored, Crypto.createHash("sha256").update(secret, "utf8").digest("hex"))
        }

        // Retire revokes the live credential, and a terminal worker gets no new one.
        yield* registry.transition(worker.id, "retire", operator, FRESH_MS)
        const afterRetire = yield* registry.listCredentials(worker.id, operator)
        assert.isTrue(afterRetire.every((c) => c.revokedAt !== null))
        assert.strictEqual((yield* Effect.flip(registry.issueCredential(worker.id, {}, operator)))._tag, "Conflict")
      }))

    it.effect("active workers: an org at its quota registers no more workers in any of its pools until one is retired", () =>
      Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const suffix = globalThis.crypto.randomUUID().slice(0, 8)
        const org = { orgId: `org_q_${suffix}`, actor: "test:q" }
        yield* seedOrg(org.orgId)
        const first = yield* registry.createPool({ name: "one", mode: "self_hosted", maxWorkers: 10, maxConcurrentWork: 2 }, org)
        const second = yield* registry.createPool({ name: "two", mode: "self_hosted", maxWorkers: 10, maxConcurrentWork: 2 }, org)
        const a = yield* registry.registerWorker({ poolId: first.id, activeWorkers: 2 }, org)
        yield* registry.registerWorker({ poolId: second.id, activeWorkers: 2 }, org)
        const refused = yield* Effect.flip(registry.registerWorker({ poolId: second.id, activeWorkers: 2 }, org))
        assert.strictEqual(refused._tag, "RateLimited")
        if (refused._tag === "RateLimited") assert.deepStrictEqual(refused.details, { quota: "active_workers", limit: 2 })
        yield* registry.transition(a.id, "retire", org, FRESH_MS)
        yield* registry.registerWorker({ poolId: first.id, activeWorkers: 2 }, org)
        yield* registry.registerWorker({ poolId: first.id }, org)
      }))

    it.effect("an org's scope reaches only its org's pools, workers and credentials (NotFound otherwise); null reaches all", () =>
      Effect.gen(function*() {
        const registry = yield* WorkerRegistry
        const suffix = globalThis.crypto.randomUUID().slice(0, 8)
        const orgA = { orgId: `org_a_${suffix}`, actor: "test:a" }
        const orgB = { orgId: `org_b_${suffix}`, actor: "test:b" }
        yield* seedOrg(orgA.orgId)
        yield* seedOrg(orgB.orgId)
        const pool = yield* registry.createPool({ name: "a", mode: "self_hosted", maxWorkers: 2, maxConcurrentWork: 2 }, orgA)
        assert.strictEqual(pool.orgId, orgA.orgId)
        const forB = yield* registry.createPool({ name: "b", mode: "self_hosted", orgId: orgB.orgId, maxWorkers: 1, maxConcurrentWork: 1 }, operator)
        assert.strictEqual(forB.orgId, orgB.orgId)
        const worker = yield* registry.registerWorker({ poolId: pool.id, id: `scoped-${suffix}` }, orgA)
        const issued = yield* registry.issueCredential(worker.id, {}, orgA)

        assert.notInclude((yield* registry.listPools(orgB)).map((p) => p.id), pool.id)
        assert.include((yield* registry.listPools(orgB)).map((p) => p.id), forB.id)
        assert.notInclude((yield* registry.listWorkers(orgB, FRESH_MS)).map((w) => w.id), worker.id)
        const notFound = [
          registry.updatePool(pool.id, { status: "paused" }, orgB),
          registry.registerWorker({ poolId: pool.id, id: `intruder-${suffix}` }, orgB),
          registry.transition(worker.id, "activate", orgB, FRESH_MS),
          registry.listCredentials(worker.id, orgB),
          registry.issueCredential(worker.id, {}, orgB),
          registry.rotateCredential(worker.id, issued.credential.id, {}, orgB),
          registry.revokeCredential(worker.id, issued.credential.id, orgB)
        ]
        for (const attempt of notFound) {
          assert.strictEqual((yield* Effect.flip(attempt as Effect.Effect<unknown, { readonly _tag: string }>))._tag, "NotFound")
        }
        assert.deepStrictEqual((yield* registry.listCredentials(worker.id, orgA)).map((c) => c.revokedAt), [null])
        assert.include((yield* registry.listPools(operator)).map((p) => p.id), pool.id)
        assert.strictEqual((yield* registry.transition(worker.id, "activate", operator, FRESH_MS)).status, "active")
      }))
  })
