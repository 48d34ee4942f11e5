import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Id, Text } from "./Input.ts"
import { OperatorAuthentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { PoolMode, PoolStatus, RegisteredWorker, WorkerCredentialView, WorkerPool } from "./WorkerPlane.ts"

/**
 * Operator routes of the worker service plane: pools, worker lifecycle, worker credentials. Org operator or admin
 * tokens manage their own org's `self_hosted` pools (another org's pool, worker or credential is a 404); platform
 * operator tokens manage every pool, and alone the `saas_operated` ones. A plaintext credential appears only in the
 * response to issue and rotate.
 */

const Name = Text(100).check(Schema.isMinLength(1))
const Capabilities = Schema.Array(Text(64).check(Schema.isMinLength(1))).check(Schema.isMaxLength(32))
const Region = Schema.NullOr(Text(64).check(Schema.isMinLength(1)))
const Count = Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 100_000 }))

const CreatePoolBody = Schema.Struct({
  name: Name,
  mode: PoolMode,
  /** Platform operators only, for a `self_hosted` pool: the org it serves (an org token's pools serve its own org). */
  orgId: Schema.optional(Id),
  maxWorkers: Count,
  maxConcurrentWork: Count,
  region: Schema.optional(Region),
  capabilities: Schema.optional(Capabilities)
})

const UpdatePoolBody = Schema.Struct({
  name: Schema.optional(Name),
  mode: Schema.optional(PoolMode),
  maxWorkers: Schema.optional(Count),
  maxConcurrentWork: Schema.optional(Count),
  region: Schema.optional(Region),
  capabilities: Schema.optional(Capabilities),
  status: Schema.optional(PoolStatus)
})

const RegisterWorkerBody = Schema.Struct({
  poolId: Id,
  name: Schema.optional(Name),
  /** The id the worker will run with (`OPEN_COWORK_CLOUD_WORKER_ID`); generated when absent. */
  id: Schema.optional(Id)
})

const Seconds = Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 365 * 24 * 3600 }))

const IssueCredentialBody = Schema.Struct({ expiresInSeconds: Schema.optional(Seconds.check(Schema.isGreaterThan(0))) })
const RotateCredentialBody = Schema.Struct({
  expiresInSeconds: Schema.optional(Seconds.check(Schema.isGreaterThan(0))),
  /** The old credential stays valid at most this long (default: until revoked or expired). */
  graceSeconds: Schema.optional(Seconds)
})

const PoolEnvelope = Schema.Struct({ pool: WorkerPool })
const PoolList = Schema.Struct({ pools: Schema.Array(WorkerPool) })
const WorkerEnvelope = Schema.Struct({ worker: RegisteredWorker })
const WorkerList = Schema.Struct({ workers: Schema.Array(RegisteredWorker) })
const CredentialEnvelope = Schema.Struct({ credential: WorkerCredentialView })
const CredentialList = Schema.Struct({ credentials: Schema.Array(WorkerCredentialView) })
/** Issue / rotate: the one response that carries the plaintext `ocw_<id>_<secret>`. */
const IssuedCredential = Schema.Struct({ credential: WorkerCredentialView, secret: Schema.String })

const poolParams = { id: Id }
const workerParams = { id: Id }
const credentialParams = { id: Id, cid: Id }

const lifecycle = (action: "activate" | "pause" | "drain" | "resume" | "retire" | "revoke") =>
  HttpApiEndpoint.post(action, `/api/admin/workers/:id/${action}`, {
    params: workerParams,
    success: WorkerEnvelope,
    error: [ApiError.NotFound, ApiError.IllegalTransition, ApiError.Conflict]
  })

export class WorkerAdminApi extends HttpApiGroup.make("workerAdmin")
  .add(
    HttpApiEndpoint.get("listPools", "/api/admin/worker-pools", { success: PoolList }),
    HttpApiEndpoint.post("createPool", "/api/admin/worker-pools", {
      payload: CreatePoolBody,
      success: PoolEnvelope.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.Forbidden, ApiError.NotFound]
    }).annotate(OpenApi.Description, "An org token creates `self_hosted` pools for its own org; only a platform operator creates `saas_operated` pools (or a `self_hosted` pool for a named `orgId`)."),
    HttpApiEndpoint.patch("updatePool", "/api/admin/worker-pools/:id", {
      params: poolParams,
      payload: UpdatePoolBody,
      success: PoolEnvelope,
      error: [ApiError.BadRequest, ApiError.Forbidden, ApiError.NotFound, ApiError.Conflict]
    }),
    HttpApiEndpoint.get("listWorkers", "/api/admin/workers", { success: WorkerList }),
    HttpApiEndpoint.post("registerWorker", "/api/admin/workers", {
      payload: RegisterWorkerBody,
      success: WorkerEnvelope.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(OpenApi.Description, "Registers a worker in `pending`; activate it once it heartbeats with its credential."),
    lifecycle("activate"),
    lifecycle("pause"),
    lifecycle("drain"),
    lifecycle("resume"),
    lifecycle("retire"),
    lifecycle("revoke"),
    HttpApiEndpoint.get("listCredentials", "/api/admin/workers/:id/credentials", {
      params: workerParams,
      success: CredentialList,
      error: ApiError.NotFound
    }),
    HttpApiEndpoint.post("issueCredential", "/api/admin/workers/:id/credentials", {
      params: workerParams,
      payload: IssueCredentialBody,
      success: IssuedCredential.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(OpenApi.Description, "The plaintext `secret` is in this response only; store it in the secret manager."),
    HttpApiEndpoint.post("rotateCredential", "/api/admin/workers/:id/credentials/:cid/rotate", {
      params: credentialParams,
      payload: RotateCredentialBody,
      success: IssuedCredential.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }),
    HttpApiEndpoint.post("revokeCredential", "/api/admin/workers/:id/credentials/:cid/revoke", {
      params: credentialParams,
      success: CredentialEnvelope,
      error: ApiError.NotFound
    })
  )
  .middleware(OperatorAuthentication)
  .annotate(RequiredScopes, ["operator", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Worker admin", description: "Worker pools, worker lifecycle and worker credentials" }))
{}
