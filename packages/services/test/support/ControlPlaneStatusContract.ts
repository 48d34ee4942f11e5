import { ControlPlaneStatus, LeaseStore, Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claim, runnableSession, TTL_MS } from "./ControlPlaneFixtures.ts"

/** The operator's view of the store itself: readiness checks with fixed texts, and the lease census. */
export const controlPlaneStatusContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`ControlPlaneStatus contract: ${harness.name}`, () => {
    it.effect("control_plane is ok; auth_config fails until bootstrap issued a live token", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const status = yield* ControlPlaneStatus
        assert.deepStrictEqual(yield* status.controlPlane, { name: "control_plane", status: "ok" })
        assert.deepStrictEqual(yield* status.authConfig, {
          name: "auth_config", status: "error", detail: "no live API token; bootstrap has not run"
        })
        const { orgId, owner } = yield* (yield* Tokens).bootstrap("org")
        assert.deepStrictEqual(yield* status.authConfig, { name: "auth_config", status: "ok" })
        yield* (yield* Tokens).revoke(owner!.tokenId, { orgId })
        assert.strictEqual((yield* status.authConfig).status, "error", "a revoked token is not live")
      })))

    it.effect("the lease census counts held leases and expired ones the reaper has not recovered", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const status = yield* ControlPlaneStatus
        assert.deepStrictEqual(yield* status.leaseCensus, { held: 0, expiredUnreaped: 0 })
        for (let i = 0; i < 3; i++) yield* runnableSession()
        yield* claim("w1", 2)
        assert.deepStrictEqual(yield* status.leaseCensus, { held: 2, expiredUnreaped: 0 })
        yield* harness.elapse(TTL_MS)
        assert.deepStrictEqual(yield* status.leaseCensus, { held: 0, expiredUnreaped: 2 })
        yield* (yield* LeaseStore).reapExpired({ batchSize: 10, drainCap: 10, maxAttempts: 3 })
        assert.deepStrictEqual(yield* status.leaseCensus, { held: 0, expiredUnreaped: 0 }, "reaped leases have no owner")
        yield* claim("w2", 1)
        assert.deepStrictEqual(yield* status.leaseCensus, { held: 1, expiredUnreaped: 0 })
      })))
  })
