import { Heartbeats, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

/** Issue 8 items 1 and 2: org tokens reach only their own org's workers, pools and sessions; the platform operator all. */

const platformOperator = Effect.gen(function*() {
  const issued = yield* (yield* Tokens).issuePlatform({ name: "platform", scopes: ["operator"] })
  return Redacted.value(issued.token)
})

const selfHostedPool = (token: string, name: string) =>
  Effect.gen(function*() {
    const created = yield* request("POST", "/api/admin/worker-pools", {
      token,
      body: { name, mode: "self_hosted", maxWorkers: 2, maxConcurrentWork: 4 }
    })
    assert.strictEqual(created.status, 201, JSON.stringify(created.body))
    const pool = created.body.pool
    const worker = (yield* request("POST", "/api/admin/workers", { token, body: { poolId: pool.id, id: `${name}-w1` } })).body.worker
    const issued = yield* request("POST", `/api/admin/workers/${worker.id}/credentials`, { token, body: {} })
    assert.strictEqual(issued.status, 201)
    return { pool, worker, credential: issued.body.credential, secret: issued.body.secret as string }
  })

it.layer(layer)("tenant isolation of operator and admin routes", (it) => {
  it.effect("another org's operator or admin token cannot see or control an org's workers (404), nor run saas pools (403)", () =>
    Effect.gen(function*() {
      const org1 = yield* orgWithToken(["admin"])
      const org2Operator = yield* orgWithToken(["operator"])
      const own = yield* selfHostedPool(org1.token, "org1-pool")
      assert.strictEqual(own.pool.orgId, org1.orgId)

      const pools = (yield* request("GET", "/api/admin/worker-pools", { token: org2Operator.token })).body.pools
      assert.deepStrictEqual(pools, [], "org 2 lists none of org 1's pools")
      const workers = (yield* request("GET", "/api/admin/workers", { token: org2Operator.token })).body.workers
      assert.deepStrictEqual(workers, [], "org 2 lists none of org 1's workers")

      const attempts: Array<[string, string, unknown]> = [
        ["POST", `/api/admin/workers/${own.worker.id}/credentials`, {}],
        ["GET", `/api/admin/workers/${own.worker.id}/credentials`, undefined],
        ["POST", `/api/admin/workers/${own.worker.id}/credentials/${own.credential.id}/rotate`, {}],
        ["POST", `/api/admin/workers/${own.worker.id}/credentials/${own.credential.id}/revoke`, undefined],
        ["POST", `/api/admin/workers/${own.worker.id}/activate`, undefined],
        ["POST", `/api/admin/workers/${own.worker.id}/revoke`, undefined],
        ["PATCH", `/api/admin/worker-pools/${own.pool.id}`, { status: "paused" }],
        ["POST", "/api/admin/workers", { poolId: own.pool.id, id: "intruder" }]
      ]
      for (const [method, path, body] of attempts) {
        const response = yield* request(method, path, { token: org2Operator.token, body })
        assert.strictEqual(response.status, 404, `${method} ${path} by another org: ${JSON.stringify(response.body)}`)
        assert.strictEqual(response.body.error.code, "not_found")
      }
      // Nothing changed: org 1 still sees its active pool and its pending worker with one live credential.
      const after = yield* request("GET", `/api/admin/workers/${own.worker.id}/credentials`, { token: org1.token })
      assert.deepStrictEqual(after.body.credentials.map((c: any) => c.revokedAt), [null])
      assert.strictEqual((yield* request("GET", "/api/admin/worker-pools", { token: org1.token })).body.pools[0].status, "active")

      const org2Admin = yield* orgWithToken(["admin"])
      const saas = yield* request("POST", "/api/admin/worker-pools", {
        token: org2Admin.token,
        body: { name: "shared", mode: "saas_operated", maxWorkers: 1, maxConcurrentWork: 1 }
      })
      assert.strictEqual(saas.status, 403, "an org admin cannot create a saas_operated pool")
      const ownPool = yield* request("POST", "/api/admin/worker-pools", {
        token: org2Admin.token,
        body: { name: "org2-pool", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 1 }
      })
      assert.strictEqual(ownPool.status, 201)
      assert.strictEqual(ownPool.body.pool.orgId, org2Admin.orgId)
      const foreign = yield* request("POST", "/api/admin/worker-pools", {
        token: org2Admin.token,
        body: { name: "org1-pool-2", mode: "self_hosted", orgId: org1.orgId, maxWorkers: 1, maxConcurrentWork: 1 }
      })
      assert.strictEqual(foreign.status, 403, "an org admin cannot create a pool for another org")
    }))

  it.effect("projection status / repair of another org's session is a 404; heartbeats show only the caller org's work", () =>
    Effect.gen(function*() {
      const org1 = yield* orgWithToken(["web", "operator"])
      const org2 = yield* orgWithToken(["web", "operator"])
      const session1 = (yield* request("POST", "/api/sessions", { token: org1.token, body: {} })).body.session.id as string
      const session2 = (yield* request("POST", "/api/sessions", { token: org2.token, body: {} })).body.session.id as string

      for (const [method, suffix] of [["GET", "projection-status"], ["POST", "projection-repair"]] as const) {
        const foreign = yield* request(method, `/api/sessions/${session1}/${suffix}`, { token: org2.token })
        assert.strictEqual(foreign.status, 404, `${method} ${suffix} of another org's session`)
        const own = yield* request(method, `/api/sessions/${session2}/${suffix}`, { token: org2.token })
        assert.strictEqual(own.status, 200, `${method} ${suffix} of the caller's own session`)
      }

      yield* (yield* Heartbeats).beat({
        workerId: "shared-worker-1", role: "worker", poolId: null, status: "active", version: "t", region: null,
        capabilities: ["prompt"], currentLoad: 2, activeWorkIds: [session1, session2]
      })
      const seenBy = (token: string) =>
        Effect.map(request("GET", "/api/workers/heartbeats", { token }), (response) =>
          response.body.heartbeats.find((beat: any) => beat.workerId === "shared-worker-1").activeWorkIds)
      assert.deepStrictEqual(yield* seenBy(org1.token), [session1])
      assert.deepStrictEqual(yield* seenBy(org2.token), [session2])

      // Queue figures in diagnostics: an org operator counts its own org's pending commands only.
      yield* request("POST", `/api/sessions/${session1}/prompt`, { token: org1.token, body: { text: "queued" } })
      const depth = (token: string) =>
        Effect.map(request("GET", "/api/diagnostics", { token }), (response) => response.body.queues.depthEstimate as number)
      const platform = yield* platformOperator
      const everyOrg = yield* depth(platform)
      assert.isAtLeast(everyOrg, 1)
      assert.strictEqual(yield* depth(org2.token), 0, "org 2 sees none of org 1's queue")
      assert.isAtLeast(yield* depth(org1.token), 1)
    }))

  it.effect("a platform operator token sees and manages every pool, runs saas pools, and is refused by tenant routes", () =>
    Effect.gen(function*() {
      const platform = yield* platformOperator
      const org1 = yield* orgWithToken(["admin", "web"])
      const own = yield* selfHostedPool(org1.token, "org1-platform-view")
      const session = (yield* request("POST", "/api/sessions", { token: org1.token, body: {} })).body.session.id as string

      const pools = (yield* request("GET", "/api/admin/worker-pools", { token: platform })).body.pools
      assert.include(pools.map((pool: any) => pool.id), own.pool.id)
      const saas = yield* request("POST", "/api/admin/worker-pools", {
        token: platform,
        body: { name: "shared", mode: "saas_operated", maxWorkers: 1, maxConcurrentWork: 1 }
      })
      assert.strictEqual(saas.status, 201)
      assert.isNull(saas.body.pool.orgId)
      const org1Pools = (yield* request("GET", "/api/admin/worker-pools", { token: org1.token })).body.pools
      assert.notInclude(org1Pools.map((pool: any) => pool.id), saas.body.pool.id, "org tokens never see saas pools")
      const saasPatch = yield* request("PATCH", `/api/admin/worker-pools/${saas.body.pool.id}`, { token: org1.token, body: { status: "paused" } })
      assert.strictEqual(saasPatch.status, 404)
      assert.strictEqual(
        (yield* request("POST", `/api/admin/workers/${own.worker.id}/activate`, { token: platform })).body.worker.status,
        "active"
      )
      const forOrg = yield* request("POST", "/api/admin/worker-pools", {
        token: platform,
        body: { name: "for-org1", mode: "self_hosted", orgId: org1.orgId, maxWorkers: 1, maxConcurrentWork: 1 }
      })
      assert.strictEqual(forOrg.status, 201)
      assert.strictEqual(forOrg.body.pool.orgId, org1.orgId)
      const noOrg = yield* request("POST", "/api/admin/worker-pools", {
        token: platform,
        body: { name: "nobody", mode: "self_hosted", orgId: "org_missing", maxWorkers: 1, maxConcurrentWork: 1 }
      })
      assert.strictEqual(noOrg.status, 404)

      assert.strictEqual((yield* request("GET", `/api/sessions/${session}/projection-status`, { token: platform })).status, 200)
      const tenant = yield* request("GET", "/api/sessions", { token: platform })
      assert.strictEqual(tenant.status, 403, "a platform operator does not act inside an org")
    }))
})
