import { Conflict, IllegalTransition, NotFound } from "@cowork/domain"
import { Heartbeats } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { client, layer, orgWithToken, request } from "./support/WebTestServer.ts"

it.layer(layer)("worker admin API", (it) => {
  it.effect("pools, registration, lifecycle, credentials over HTTP; tenant tokens get 403", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["operator"])
      const tenant = yield* orgWithToken(["web"])
      const heartbeats = yield* Heartbeats
      const sql = yield* SqlClient.SqlClient

      assert.strictEqual((yield* request("GET", "/api/admin/worker-pools", { token: tenant.token })).status, 403)
      assert.strictEqual((yield* request("GET", "/api/admin/workers")).status, 401)

      const badPool = yield* request("POST", "/api/admin/worker-pools", { token, body: { name: "p", mode: "cloud", maxWorkers: 1, maxConcurrentWork: 1 } })
      assert.strictEqual(badPool.status, 400)
      assert.strictEqual(badPool.body.error.details.field, "mode")

      const api = yield* client(token)
      const { pool } = yield* api.workerAdmin.createPool({
        payload: { name: "eu-pool", mode: "self_hosted", maxWorkers: 2, maxConcurrentWork: 8, region: "eu-west-1", capabilities: ["prompt"] }
      })
      assert.deepStrictEqual([pool.mode, pool.status, pool.maxConcurrentWork], ["self_hosted", "active", 8])
      const patched = yield* api.workerAdmin.updatePool({ params: { id: pool.id }, payload: { maxConcurrentWork: 4 } })
      assert.strictEqual(patched.pool.maxConcurrentWork, 4)
      assert.instanceOf(yield* Effect.flip(api.workerAdmin.updatePool({ params: { id: "pool_nope" }, payload: {} })), NotFound)
      assert.strictEqual((yield* api.workerAdmin.listPools()).pools.length, 1)

      const worker = { params: { id: "worker-eu-1" } }
      const registered = yield* api.workerAdmin.registerWorker({ payload: { poolId: pool.id, id: "worker-eu-1" } })
      assert.strictEqual(registered.worker.status, "pending")
      assert.instanceOf(yield* Effect.flip(api.workerAdmin.registerWorker({ payload: { poolId: pool.id, id: "worker-eu-1" } })), Conflict)

      const illegal = yield* request("POST", "/api/admin/workers/worker-eu-1/resume", { token })
      assert.strictEqual(illegal.status, 409)
      assert.include(illegal.body.error.message, "pending")
      assert.include(illegal.body.error.message, "active")
      assert.deepStrictEqual([illegal.body.error.details.from, illegal.body.error.details.to], ["pending", "active"])
      const illegalTyped = yield* Effect.flip(api.workerAdmin.resume(worker))
      assert.instanceOf(illegalTyped, IllegalTransition)
      assert.deepStrictEqual([(illegalTyped as IllegalTransition).from, (illegalTyped as IllegalTransition).to], ["pending", "active"])

      const issued = yield* api.workerAdmin.issueCredential({ ...worker, payload: { expiresInSeconds: 3600 } })
      assert.match(issued.secret, /^ocw_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/)
      const listed = yield* api.workerAdmin.listCredentials(worker)
      assert.notInclude(JSON.stringify(listed), issued.secret.split("_").slice(2).join("_"), "the plaintext appears only once")

      assert.strictEqual((yield* api.workerAdmin.activate(worker)).worker.status, "active")
      yield* heartbeats.beat({
        workerId: "worker-eu-1", role: "worker", poolId: null, status: "active", version: "t", region: "eu-west-1",
        capabilities: ["prompt"], currentLoad: 0, activeWorkIds: [], credential: Redacted.make(issued.secret)
      })
      const beats = (yield* api.operator.heartbeats()).heartbeats
      assert.deepStrictEqual(beats.map((b) => [b.workerId, b.poolId, b.status]), [["worker-eu-1", pool.id, "active"]])
      assert.strictEqual((yield* api.workerAdmin.listWorkers()).workers[0]!.health, "healthy")

      assert.strictEqual((yield* api.workerAdmin.drain(worker)).worker.status, "draining")
      assert.strictEqual((yield* api.operator.heartbeats()).heartbeats[0]!.status, "draining")

      const credential = { params: { id: "worker-eu-1", cid: issued.credential.id } }
      const rotated = yield* api.workerAdmin.rotateCredential({ ...credential, payload: {} })
      assert.strictEqual(rotated.credential.replacesId, issued.credential.id)
      const revoked = yield* api.workerAdmin.revokeCredential(credential)
      assert.isString(revoked.credential.revokedAt)

      assert.strictEqual((yield* api.workerAdmin.retire(worker)).worker.status, "retired")
      assert.instanceOf(yield* Effect.flip(api.workerAdmin.issueCredential({ ...worker, payload: {} })), Conflict)
      assert.instanceOf(yield* Effect.flip(api.workerAdmin.activate({ params: { id: "worker-nope" } })), NotFound)

      const audit = yield* sql<{ action: string }>`SELECT action FROM cloud_audit_events ORDER BY id`
      assert.includeMembers(audit.map((a) => a.action), [
        "worker_pool.created", "worker_pool.updated", "worker.registered", "worker_credential.issued", "worker.active",
        "worker_credential.last_used", "worker.draining", "worker_credential.rotated", "worker_credential.revoked", "worker.retired"
      ])
    }))
})
