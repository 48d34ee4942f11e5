import { Schema } from "effect"

/**
 * The worker service plane: pools, registered workers and their credentials. A worker's lifecycle status is the
 * operator's intent; the claim SQL reads it (with the pool's status and limits) on every claim.
 */

export const PoolMode = Schema.Literals(["self_hosted", "saas_operated"])
export type PoolMode = typeof PoolMode.Type

/** `active` pools claim; `draining` pools renew but claim nothing new; `paused` pools neither claim nor renew. */
export const PoolStatus = Schema.Literals(["active", "draining", "paused"])
export type PoolStatus = typeof PoolStatus.Type

export const WorkerLifecycle = Schema.Literals(["pending", "active", "draining", "paused", "retired", "revoked"])
export type WorkerLifecycle = typeof WorkerLifecycle.Type

export const WorkerAction = Schema.Literals(["activate", "pause", "drain", "resume", "retire", "revoke"])
export type WorkerAction = typeof WorkerAction.Type

/**
 * The explicit transition table: for each action, the states it may start from and the state it leads to.
 * `retired` and `revoked` are terminal.
 */
export const workerTransitions: Readonly<Record<WorkerAction, { readonly from: ReadonlyArray<WorkerLifecycle>; readonly to: WorkerLifecycle }>> = {
  activate: { from: ["pending"], to: "active" },
  pause: { from: ["active", "draining"], to: "paused" },
  drain: { from: ["active", "paused"], to: "draining" },
  resume: { from: ["draining", "paused"], to: "active" },
  retire: { from: ["pending", "draining", "paused"], to: "retired" },
  revoke: { from: ["pending", "active", "draining", "paused"], to: "revoked" }
}

/** The state `action` leads to from `from`, or undefined when the table forbids it. */
export const transition = (from: WorkerLifecycle, action: WorkerAction): WorkerLifecycle | undefined => {
  const rule = workerTransitions[action]
  return rule.from.includes(from) ? rule.to : undefined
}

export const isTerminal = (status: WorkerLifecycle): boolean => status === "retired" || status === "revoked"

export const WorkerPool = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  mode: PoolMode,
  /** The org a self-hosted pool serves (its workers claim only that org's sessions); `null` for saas_operated. */
  orgId: Schema.NullOr(Schema.String),
  maxWorkers: Schema.Number,
  maxConcurrentWork: Schema.Number,
  region: Schema.NullOr(Schema.String),
  capabilities: Schema.Array(Schema.String),
  status: PoolStatus,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type WorkerPool = typeof WorkerPool.Type

export const RegisteredWorker = Schema.Struct({
  id: Schema.String,
  poolId: Schema.String,
  name: Schema.String,
  status: WorkerLifecycle,
  /** `healthy` / `unhealthy` from heartbeat age (`unknown` before the first beat). */
  health: Schema.Literals(["healthy", "unhealthy", "unknown"]),
  lastHeartbeatAt: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type RegisteredWorker = typeof RegisteredWorker.Type

export const WORKER_CREDENTIAL_SCOPES = ["worker:claim", "worker:heartbeat"] as const

/** Credential metadata; the plaintext is never part of it. */
export const WorkerCredentialView = Schema.Struct({
  id: Schema.String,
  workerId: Schema.String,
  scopes: Schema.Array(Schema.String),
  createdAt: Schema.String,
  expiresAt: Schema.String,
  revokedAt: Schema.NullOr(Schema.String),
  lastUsedAt: Schema.NullOr(Schema.String),
  replacesId: Schema.NullOr(Schema.String),
  replacedById: Schema.NullOr(Schema.String)
})
export type WorkerCredentialView = typeof WorkerCredentialView.Type

const WORKER_CREDENTIAL_PREFIX = "ocw"

const credentialPattern = /^ocw_([A-Za-z0-9]{8,64})_([A-Za-z0-9_-]{20,128})$/

/** Splits `ocw_<id>_<secret>`; anything else is not a worker credential. */
export const parseWorkerCredential = (raw: string): { readonly credentialId: string; readonly secret: string } | undefined => {
  const match = credentialPattern.exec(raw)
  return match === null ? undefined : { credentialId: match[1]!, secret: match[2]! }
}

export const formatWorkerCredential = (credentialId: string, secret: string): string =>
  `${WORKER_CREDENTIAL_PREFIX}_${credentialId}_${secret}`

/** An action the transition table forbids; the 409 names both states. */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  workerId: Schema.String,
  action: Schema.String,
  from: Schema.String,
  to: Schema.String
}, { httpApiStatus: 409 }) {}

/** The worker may not heartbeat or claim: unknown, revoked/retired, or its credential is invalid, expired or revoked. */
export class WorkerRefused extends Schema.TaggedError<WorkerRefused>()("WorkerRefused", {
  workerId: Schema.String,
  reason: Schema.String
}) {}
