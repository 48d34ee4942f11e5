import { type Lease, StaleOwner } from "@cowork/domain"
import { LeaseStore, SessionStore, Tokens, WorkerRegistry } from "@cowork/services"
import { assert } from "@effect/vitest"
import { Effect, Redacted } from "effect"

/** Fixtures the contract suites share: built through the services themselves, so they work on every store. */

export const operator = { orgId: null, actor: "test:contract" }
export const FRESH_MS = 15_000
export const TTL_MS = 10_000
export const MAX_ATTEMPTS = 3

export const newOrg = Effect.gen(function*() {
  return (yield* (yield* Tokens).createOrg("contract")).orgId
})

/** A session in a new org (or `orgId`), returning its id and org. */
export const newSession = (orgId?: string) =>
  Effect.gen(function*() {
    const org = orgId ?? (yield* newOrg)
    const session = yield* (yield* SessionStore).create(org, {})
    return { sessionId: session.id, orgId: org }
  })

export const prompt = (session: { readonly sessionId: string; readonly orgId: string }, text = "hi", idempotencyKey?: string) =>
  Effect.gen(function*() {
    const enqueued = yield* (yield* SessionStore).prompt(session.orgId, session.sessionId, { text, idempotencyKey })
    return enqueued.commandId
  }).pipe(Effect.orDie)

/** A session with one pending prompt. */
export const runnableSession = (orgId?: string) =>
  Effect.gen(function*() {
    const session = yield* newSession(orgId)
    const commandId = yield* prompt(session)
    return { ...session, commandId }
  })

export const claim = (workerId: string, limit = 10, credential?: Redacted.Redacted<string>) =>
  Effect.flatMap(Effect.service(LeaseStore), (leases) => leases.claim(workerId, limit, TTL_MS, MAX_ATTEMPTS, credential))

/** Claims exactly the lease of `sessionId` for `workerId`. */
export const claimOne = (workerId: string, sessionId: string) =>
  Effect.gen(function*() {
    const leases = yield* claim(workerId, 100)
    const lease = leases.find((l) => l.sessionId === sessionId)
    assert.isDefined(lease, `${workerId} should claim ${sessionId}`)
    return lease!
  })

/** Asserts `effect` fails with `StaleOwner` for `lease` and `operation`. */
export const expectStale = <A, R>(effect: Effect.Effect<A, StaleOwner, R>, lease: Lease, operation: StaleOwner["operation"]) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(effect)
    assert.instanceOf(error, StaleOwner)
    assert.deepStrictEqual({ sessionId: error.sessionId, epoch: error.epoch, operation: error.operation }, {
      sessionId: lease.sessionId,
      epoch: lease.epoch,
      operation
    })
  })

/** A registered, active worker in a new pool, with a valid credential. */
export const managedWorker = (
  id: string,
  pool: { readonly maxWorkers?: number; readonly maxConcurrentWork?: number; readonly poolId?: string } = {}
) =>
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry
    const poolId = pool.poolId ?? (yield* registry.createPool({
      name: `pool-${id}`,
      mode: "self_hosted",
      maxWorkers: pool.maxWorkers ?? 10,
      maxConcurrentWork: pool.maxConcurrentWork ?? 10
    }, operator)).id
    yield* registry.registerWorker({ poolId, id }, operator)
    yield* registry.transition(id, "activate", operator, FRESH_MS)
    const issued = yield* registry.issueCredential(id, { expiresInSeconds: 3_600 }, operator)
    return { workerId: id, poolId, credential: issued.plaintext, credentialId: issued.credential.id }
  }).pipe(Effect.orDie)

export const bogusCredential = Redacted.make("ocw_notarealcredential_AAAAAAAAAAAAAAAAAAAAAAAAAAAA")
