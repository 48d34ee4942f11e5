import {
  Conflict,
  formatWorkerCredential,
  IllegalTransition,
  isTerminal,
  NotFound,
  transition,
  WORKER_CREDENTIAL_SCOPES,
  type PoolMode,
  type PoolStatus,
  type RegisteredWorker,
  type WorkerAction,
  type WorkerCredentialView,
  type WorkerPool
} from "@cowork/domain"
import { Clock, Context, Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"

/** Who did it, for the audit trail: the acting token and its org. */
export interface Actor {
  readonly orgId: string | null
  readonly actor: string
}

export interface NewPool {
  readonly name: string
  readonly mode: PoolMode
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

export const DEFAULT_CREDENTIAL_TTL_SECONDS = 30 * 24 * 3600
export const MAX_CREDENTIAL_TTL_SECONDS = 365 * 24 * 3600

/**
 * Worker pools, registered workers and their credentials, with an audit event for every lifecycle change and
 * every credential issue / rotate / revoke (and first use, recorded by the heartbeat).
 */
export class WorkerRegistry extends Context.Service<WorkerRegistry, {
  readonly createPool: (input: NewPool, actor: Actor) => Effect.Effect<WorkerPool>
  readonly listPools: Effect.Effect<ReadonlyArray<WorkerPool>>
  readonly updatePool: (poolId: string, patch: PoolPatch, actor: Actor) => Effect.Effect<WorkerPool, NotFound>
  /** Registers a worker in `pending`; `id` defaults to a generated one (the worker's OPEN_COWORK_CLOUD_WORKER_ID). */
  readonly registerWorker: (
    input: { readonly poolId: string; readonly name?: string | undefined; readonly id?: string | undefined },
    actor: Actor
  ) => Effect.Effect<RegisteredWorker, NotFound | Conflict>
  readonly listWorkers: (freshWithinMs: number) => Effect.Effect<ReadonlyArray<RegisteredWorker>>
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
  readonly listCredentials: (workerId: string) => Effect.Effect<ReadonlyArray<WorkerCredentialView>, NotFound>
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
  static readonly layerMemory = Layer.effect(WorkerRegistry, Effect.sync(() => makeMemory()))
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

export const randomId = (length = 20): string => {
  let id = ""
  for (const byte of Crypto.randomBytes(length)) id += ALPHANUMERIC[byte % ALPHANUMERIC.length]
  return id
}

/** A fresh credential: its id, the plaintext to hand out once, and the only thing stored, the secret's sha256. */
export const newWorkerSecret = () => {
  const credentialId = randomId()
  const secret = Crypto.randomBytes(32).toString("base64url")
  return {
    credentialId,
    plaintext: Redacted.make(formatWorkerCredential(credentialId, secret)),
    secretHash: hashWorkerSecret(secret)
  }
}

export const hashWorkerSecret = (secret: string): string => Crypto.createHash("sha256").update(secret, "utf8").digest("hex")

export const clampCredentialTtl = (seconds: number | undefined): number =>
  Math.min(MAX_CREDENTIAL_TTL_SECONDS, Math.max(1, Math.floor(seconds ?? DEFAULT_CREDENTIAL_TTL_SECONDS)))

/** The in-memory registry, for handler tests; the claim-time enforcement lives in the SQL adapter. */
export const makeMemory = (): WorkerRegistry["Service"] => {
  const pools = new Map<string, WorkerPool>()
  const workers = new Map<string, { worker: RegisteredWorker }>()
  const credentials = new Map<string, WorkerCredentialView & { readonly secretHash: string }>()
  const iso = Effect.map(Clock.currentTimeMillis, (now) => new Date(now).toISOString())
  const view = ({ secretHash: _hash, ...rest }: WorkerCredentialView & { readonly secretHash: string }): WorkerCredentialView => rest
  const notFound = (what: string) => new NotFound({ message: `no such ${what}` })

  const worker = (id: string) =>
    Effect.suspend(() => {
      const found = workers.get(id)
      return found === undefined ? Effect.fail(notFound("worker")) : Effect.succeed(found)
    })

  const issue = (workerId: string, expiresInSeconds: number | undefined, replacesId: string | null) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const fresh = newWorkerSecret()
      const credential = {
        id: fresh.credentialId,
        workerId,
        scopes: [...WORKER_CREDENTIAL_SCOPES],
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + clampCredentialTtl(expiresInSeconds) * 1000).toISOString(),
        revokedAt: null,
        lastUsedAt: null,
        replacesId,
        replacedById: null,
        secretHash: fresh.secretHash
      }
      credentials.set(credential.id, credential)
      return { credential: view(credential), plaintext: fresh.plaintext }
    })

  const ownCredential = (workerId: string, credentialId: string) =>
    Effect.suspend(() => {
      const found = credentials.get(credentialId)
      return found === undefined || found.workerId !== workerId ? Effect.fail(notFound("credential")) : Effect.succeed(found)
    })

  return WorkerRegistry.of({
    createPool: (input) =>
      Effect.gen(function*() {
        const now = yield* iso
        const pool: WorkerPool = {
          id: `pool_${randomId(16)}`,
          name: input.name,
          mode: input.mode,
          maxWorkers: input.maxWorkers,
          maxConcurrentWork: input.maxConcurrentWork,
          region: input.region ?? null,
          capabilities: [...(input.capabilities ?? [])],
          status: "active",
          createdAt: now,
          updatedAt: now
        }
        pools.set(pool.id, pool)
        return pool
      }),
    listPools: Effect.sync(() => [...pools.values()]),
    updatePool: (poolId, patch) =>
      Effect.gen(function*() {
        const pool = pools.get(poolId)
        if (pool === undefined) return yield* notFound("pool")
        const defined = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined))
        const next: WorkerPool = { ...pool, ...defined, updatedAt: yield* iso }
        pools.set(poolId, next)
        return next
      }),
    registerWorker: (input) =>
      Effect.gen(function*() {
        if (!pools.has(input.poolId)) return yield* notFound("pool")
        const id = input.id ?? `wrk_${randomId(16)}`
        if (workers.has(id)) return yield* new Conflict({ message: `worker ${id} is already registered` })
        const now = yield* iso
        const registered: RegisteredWorker = {
          id,
          poolId: input.poolId,
          name: input.name ?? id,
          status: "pending",
          health: "unknown",
          lastHeartbeatAt: null,
          createdAt: now,
          updatedAt: now
        }
        workers.set(id, { worker: registered })
        return registered
      }),
    listWorkers: () => Effect.sync(() => [...workers.values()].map((entry) => entry.worker)),
    transition: (workerId, action) =>
      Effect.gen(function*() {
        const entry = yield* worker(workerId)
        const to = transition(entry.worker.status, action)
        if (to === undefined) {
          return yield* new IllegalTransition({ workerId, action, from: entry.worker.status, to: ACTION_TARGET[action] })
        }
        if (to === "active") {
          const pool = pools.get(entry.worker.poolId)!
          const busy = [...workers.values()].filter((other) =>
            other.worker.poolId === pool.id && other.worker.id !== workerId &&
            (other.worker.status === "active" || other.worker.status === "draining")
          ).length
          if (busy >= pool.maxWorkers) {
            return yield* new Conflict({
              message: `pool ${pool.id} already has maxWorkers=${pool.maxWorkers} active or draining workers`
            })
          }
        }
        entry.worker = { ...entry.worker, status: to, updatedAt: yield* iso }
        if (to === "retired" || to === "revoked") {
          const now = yield* iso
          for (const [id, credential] of credentials) {
            if (credential.workerId === workerId && credential.revokedAt === null) credentials.set(id, { ...credential, revokedAt: now })
          }
        }
        return entry.worker
      }),
    listCredentials: (workerId) =>
      Effect.map(worker(workerId), () => [...credentials.values()].filter((c) => c.workerId === workerId).map(view)),
    issueCredential: (workerId, options) =>
      Effect.gen(function*() {
        const entry = yield* worker(workerId)
        if (isTerminal(entry.worker.status)) {
          return yield* new Conflict({ message: `worker ${workerId} is ${entry.worker.status}: no new credentials` })
        }
        return yield* issue(workerId, options.expiresInSeconds, null)
      }),
    rotateCredential: (workerId, credentialId, options) =>
      Effect.gen(function*() {
        const entry = yield* worker(workerId)
        if (isTerminal(entry.worker.status)) {
          return yield* new Conflict({ message: `worker ${workerId} is ${entry.worker.status}: no new credentials` })
        }
        const old = yield* ownCredential(workerId, credentialId)
        if (old.revokedAt !== null) return yield* new Conflict({ message: `credential ${credentialId} is revoked` })
        const issued = yield* issue(workerId, options.expiresInSeconds, credentialId)
        const now = yield* Clock.currentTimeMillis
        const expiresAt = options.graceSeconds === undefined
          ? old.expiresAt
          : new Date(Math.min(Date.parse(old.expiresAt), now + options.graceSeconds * 1000)).toISOString()
        credentials.set(credentialId, { ...old, replacedById: issued.credential.id, expiresAt })
        return issued
      }),
    revokeCredential: (workerId, credentialId) =>
      Effect.gen(function*() {
        const old = yield* ownCredential(workerId, credentialId)
        const next = old.revokedAt === null ? { ...old, revokedAt: yield* iso } : old
        credentials.set(credentialId, next)
        return view(next)
      })
  })
}

/** The state an action aims for, for the 409 message even when the table forbids it. */
export const ACTION_TARGET: Readonly<Record<WorkerAction, string>> = {
  activate: "active",
  pause: "paused",
  drain: "draining",
  resume: "active",
  retire: "retired",
  revoke: "revoked"
}
