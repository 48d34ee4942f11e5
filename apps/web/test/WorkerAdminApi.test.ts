import { Heartbeats } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

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

      const created = yield* request("POST", "/api/admin/worker-pools", {
        token,
        body: { name: "eu-pool", mode: "self_hosted", maxWorkers: 2, maxConcurrentWork: 8, region: "eu-west-1", capabilities: ["prompt"] }
      })
      assert.strictEqual(created.status, 201)
      const pool = created.body.pool
      assert.deepStrictEqual([pool.mode, pool.status, pool.maxConcurrentWork], ["self_hosted", "active", 8])
      const patched = yield* request("PATCH", `/api/admin/worker-pools/${pool.id}`, { token, body: { maxConcurrentWork: 4 } })
      assert.strictEqual(patched.body.pool.maxConcurrentWork, 4)
      assert.strictEqual((yield* request("PATCH", "/api/admin/worker-pools/pool_nope", { token, body: {} })).status, 404)
      assert.strictEqual((yield* request("GET", "/api/admin/worker-pools", { token })).body.pools.length, 1)

      const registered = yield* request("POST", "/api/admin/workers", { token, body: { poolId: pool.id, id: "worker-eu-1" } })
      assert.strictEqual(registered.status, 201)
      assert.strictEqual(registered.body.worker.status, "pending")
      assert.strictEqual((yield* request("POST", "/api/admin/workers", { token, body: { poolId: pool.id, id: "worker-eu-1" } })).status, 409)

      const illegal = yield* request("POST", "/api/admin/workers/worker-eu-1/resume", { token })
      assert.strictEqual(illegal.status, 409)
      assert.include(illegal.body.error.message, "pending")
      assert.include(illegal.body.error.message, "active")
      assert.deepStrictEqual([illegal.body.error.details.from, illegal.body.error.details.to], ["pending", "active"])

      const issued = yield* request("POST", "/api/admin/workers/worker-eu-1/credentials", { token, body: { expiresInSeconds: 3600 } })
      assert.strictEqual(issued.status, 201)
      assert.match(issued.body.secret, /^ocw_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/)
      const listed = yield* request("GET", "/api/admin/workers/worker-eu-1/credentials", { token })
      assert.notInclude(JSON.stringify(listed.body), issued.body.secret.split("_")[2], "the plaintext appears only once")

      const activated = yield* request("POST", "/api/admin/workers/worker-eu-1/activate", { token })
      assert.strictEqual(activated.body.worker.status, "active")
      yield* heartbeats.beat({
        workerId: "worker-eu-1", role: "worker", poolId: null, status: "active", version: "t", region: "eu-west-1",
        capabilities: ["prompt"], currentLoad: 0, activeWorkIds: [], credential: Redacted.make(issued.body.secret)
      })
      const beats = (yield* request("GET", "/api/workers/heartbeats", { token })).body.heartbeats
      assert.deepStrictEqual(beats.map((b: any) => [b.workerId, b.poolId, b.status]), [["worker-eu-1", pool.id, "active"]])
      assert.strictEqual((yield* request("GET", "/api/admin/workers", { token })).body.workers[0].health, "healthy")

      assert.strictEqual((yield* request("POST", "/api/admin/workers/worker-eu-1/drain", { token })).body.worker.status, "draining")
      const drainingBeat = (yield* request("GET", "/api/workers/heartbeats", { token })).body.heartbeats[0]
      assert.strictEqual(drainingBeat.status, "draining")

      const rotated = yield* request("POST", `/api/admin/workers/worker-eu-1/credentials/${issued.body.credential.id}/rotate`, { token, body: {} })
      assert.strictEqual(rotated.status, 201)
      assert.strictEqual(rotated.body.credential.replacesId, issued.body.credential.id)
      const revoked = yield* request("POST", `/api/admin/workers/worker-eu-1/credentials/${issued.body.credential.id}/revoke`, { token })
      assert.isString(revoked.body.credential.revokedAt)

      assert.strictEqual((yield* request("POST", "/api/admin/workers/worker-eu-1/retire", { token })).body.worker.status, "retired")
      const terminal = yield* request("POST", "/api/admin/workers/worker-eu-1/credentials", { token, body: {} })
      assert.strictEqual(terminal.status, 409)
      assert.strictEqual((yield* request("POST", "/api/admin/workers/worker-nope/activate", { token })).status, 404)

      const audit = yield* sql<{ action: string }>`SELECT action FROM cloud_audit_events ORDER BY id`
      assert.includeMembers(audit.map((a) => a.action), [
        "worker_pool.created", "worker_pool.updated", "worker.registered", "worker_credential.issued", "worker.active",
        "worker_credential.last_used", "worker.draining", "worker_credential.rotated", "worker_credential.revoked", "worker.retired"
      ])
    }))
})
