import { PgLeaseStore, PgWorkerRegistry } from "@cowork/postgres"
import { LeaseStore, WorkerRegistry } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { createSession, enqueue } from "./support/WorkerFixtures.ts"

/** Issue 8 item 1: a worker in an org's self-hosted pool claims only that org's sessions, enforced in the claim SQL. */

const Env = Layer.mergeAll(PgLeaseStore.layer, PgWorkerRegistry.layer).pipe(Layer.provideMerge(TestDatabase.layer()))

it.layer(Env)("claims by tenant", (it) => {
  it.effect("a self-hosted pool's worker claims only its org's sessions; an unmanaged worker claims any org's", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const registry = yield* WorkerRegistry
      const leases = yield* LeaseStore
      yield* sql`INSERT INTO cloud_orgs (id, name) VALUES ('org_a', 'a'), ('org_b', 'b')`
      const orgA = { orgId: "org_a", actor: "test:org_a" }
      const pool = yield* registry.createPool({ name: "a-pool", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 10 }, orgA)
      assert.strictEqual(pool.orgId, "org_a")
      const worker = yield* registry.registerWorker({ poolId: pool.id, id: "a-worker" }, orgA)
      const issued = yield* registry.issueCredential(worker.id, {}, orgA)
      yield* registry.transition(worker.id, "activate", orgA, 15_000)

      const sessionsB = ["ses_b1", "ses_b2"]
      for (const id of sessionsB) {
        yield* createSession(id, "org_b")
        yield* enqueue(id, `cmd_${id}`)
      }
      yield* createSession("ses_a1", "org_a")
      yield* enqueue("ses_a1", "cmd_a1")

      const claimed = yield* leases.claim(worker.id, 10, 60_000, 3, issued.plaintext)
      assert.deepStrictEqual(claimed.map((lease) => lease.sessionId), ["ses_a1"], "org B's sessions stay unclaimed")
      const again = yield* leases.claim(worker.id, 10, 60_000, 3, issued.plaintext)
      assert.deepStrictEqual(again, [], "nothing else of its org is runnable")

      const unmanaged = yield* leases.claim("unmanaged-1", 10, 60_000, 3)
      assert.deepStrictEqual(unmanaged.map((lease) => lease.sessionId).sort(), sessionsB)
    }))
})
