import type {
  Conflict,
  IllegalTransition,
  NotFound,
  PoolMode,
  PoolStatus,
  RateLimited,
  RegisteredWorker,
  WorkerAction,
  WorkerCredentialView,
  WorkerPool
} from "@cowork/domain"
import { Context, Effect, Layer, type Redacted } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { makeWorkerRegistryMemory } from "./WorkerRegistryMemory.ts"

/**
 * Whose pools an operation reaches: one org's pools (`orgId`), or every pool (`null`: a platform operator, the CLI).
 * Outside its scope a pool, its workers and their credentials do not exist (`NotFound`).
 */
export interface RegistryScope {
  readonly orgId: string | null
}

/** Who did it, for the audit trail and the scope of the change: the acting token and its org. */
export interface Actor extends RegistryScope {
  readonly actor: string
}

export interface NewPool {
  readonly name: string
  readonly mode: PoolMode
  /** The org a self-hosted pool serves; an org actor's pools always serve the actor's org. */
  readonly orgId?: string | null | undefined
  readonly maxWorkers: number
  readonly maxConcurrentWork: number
  readonly region?: string | null | undefined
  readonly capabilities?: ReadonlyArray<string> | undefined
}

export interface PoolPatch {
  readonly name?: string | undefined
  readonly mode?: PoolMode | undefined
  readonly maxWorkers?: number | undefined
  readonly maxConcurrentWork?: number | undefined
  readonly region?: string | null | undefined
  readonly capabilities?: ReadonlyArray<string> | undefined
  readonly status?: PoolStatus | undefined
}

export interface IssuedWorkerCredential {
  readonly credential: WorkerCredentialView
  /** `ocw_<id>_<secret>`: returned on issue and rotate only, never stored (only a hash of the secret is). */
  readonly plaintext: Redacted.Redacted<string>
}

/** A worker to register (`WorkerRegistry.registerWorker`). */
export interface NewWorker {
  readonly poolId: string
  readonly name?: string | undefined
  readonly id?: string | undefined
  /** The org's `active_workers` quota, checked with the insert (absent: not checked). */
  readonly activeWorkers?: number | undefined
}

/**
 * Worker pools, registered workers and their credentials, with an audit event for every lifecycle change and
 * every credential issue / rotate / revoke (and first use, recorded by the heartbeat).
 */
export class WorkerRegistry extends Context.Service<WorkerRegistry, {
  /** `NotFound` when the pool's org does not exist. */
  readonly createPool: (input: NewPool, actor: Actor) => Effect.Effect<WorkerPool, NotFound>
  readonly listPools: (scope: RegistryScope) => Effect.Effect<ReadonlyArray<WorkerPool>>
  readonly updatePool: (poolId: string, patch: PoolPatch, actor: Actor) => Effect.Effect<WorkerPool, NotFound>
  /**
   * Registers a worker in `pending`; `id` defaults to a generated one (the worker's OPEN_COWORK_CLOUD_WORKER_ID).
   * With `activeWorkers`, an org's (self-hosted) pool takes no worker once the org has that many unretired,
   * unrevoked workers across its pools: `RateLimited` (quota `active_workers`).
   */
  readonly registerWorker: (input: NewWorker, actor: Actor) => Effect.Effect<RegisteredWorker, NotFound | Conflict | RateLimited>
  readonly listWorkers: (scope: RegistryScope, freshWithinMs: number) => Effect.Effect<ReadonlyArray<RegisteredWorker>>
  /**
   * Applies a lifecycle action from the transition table. `activate` / `resume` also honour the pool's
   * `maxWorkers` (active + draining workers). `retire` and `revoke` revoke the worker's live credentials; `revoke`
   * expires its leases at once so another worker recovers them (its in-flight writes are refused by the fence).
   */
  readonly transition: (
    workerId: string,
    action: WorkerAction,
    actor: Actor,
    freshWithinMs: number
  ) => Effect.Effect<RegisteredWorker, NotFound | IllegalTransition | Conflict>
  readonly listCredentials: (workerId: string, scope: RegistryScope) => Effect.Effect<ReadonlyArray<WorkerCredentialView>, NotFound>
  /** Fails with Conflict for a retired or revoked worker: terminal workers get no new credentials. */
  readonly issueCredential: (
    workerId: string,
    options: { readonly expiresInSeconds?: number | undefined },
    actor: Actor
  ) => Effect.Effect<IssuedWorkerCredential, NotFound | Conflict>
  /**
   * Issues a replacement with the same scopes, linked to the old one. The old credential stays valid until it is
   * revoked (or, with `graceSeconds`, until then at the latest), so a worker can be rolled onto the new one.
   */
  readonly rotateCredential: (
    workerId: string,
    credentialId: string,
    options: { readonly expiresInSeconds?: number | undefined; readonly graceSeconds?: number | undefined },
    actor: Actor
  ) => Effect.Effect<IssuedWorkerCredential, NotFound | Conflict>
  readonly revokeCredential: (workerId: string, credentialId: string, actor: Actor) => Effect.Effect<WorkerCredentialView, NotFound>
}>()("cowork/WorkerRegistry") {
  /** Over the shared `MemoryDatabase`: the workers, pools and credentials the memory claim and heartbeat check. */
  static readonly layerMemory: Layer.Layer<WorkerRegistry, never, MemoryDatabase> = Layer.effect(
    WorkerRegistry,
    Effect.map(Effect.service(MemoryDatabase), makeWorkerRegistryMemory)
  )
}
