import {
  Api,
  BadRequest,
  Conflict,
  CurrentCaller,
  Forbidden,
  heartbeatFreshWithinMs,
  NotFound,
  type PoolMode,
  type WorkerAction,
  type WorkerCredentialView
} from "@cowork/domain"
import { type Actor, WorkerRegistry } from "@cowork/services"
import { Config, Effect, Redacted } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { QuotaPolicy } from "./QuotaPolicy.ts"

/**
 * The caller as the registry's actor and scope: an org principal reaches only its org's (self-hosted) pools, their
 * workers and credentials; a platform operator reaches every pool.
 */
const actor = Effect.map(CurrentCaller, (caller): Actor =>
  caller.kind === "platform"
    ? { orgId: null, actor: `platform-token:${caller.tokenId}` }
    : { orgId: caller.orgId, actor: `token:${caller.tokenId}` })

/** Only a platform operator runs `saas_operated` pools; an org admin manages its own `self_hosted` ones. */
const mayUseMode = (mode: PoolMode | undefined) =>
  Effect.flatMap(CurrentCaller, (caller) =>
    mode === "saas_operated" && caller.kind !== "platform"
      ? Effect.fail(new Forbidden({ message: "only a platform operator manages saas_operated pools; an org manages self_hosted pools" }))
      : Effect.void)

/** A new pool's org: an org principal's own; a platform operator names it for a self-hosted pool (none for saas). */
const poolOrg = (mode: PoolMode, requested: string | undefined) =>
  Effect.gen(function*() {
    const caller = yield* CurrentCaller
    if (caller.kind === "org") {
      if (requested !== undefined && requested !== caller.orgId) {
        return yield* new Forbidden({ message: "an org token creates pools for its own org only" })
      }
      return caller.orgId
    }
    if (mode === "saas_operated") {
      if (requested !== undefined) return yield* new BadRequest({ message: "saas_operated pools serve every org: omit `orgId`", field: "orgId" })
      return null
    }
    if (requested === undefined) return yield* new BadRequest({ message: "a self_hosted pool serves one org: `orgId` is required", field: "orgId" })
    return requested
  })

export const layer = HttpApiBuilder.group(Api, "workerAdmin", Effect.fn(function*(handlers) {
  const registry = yield* WorkerRegistry
  const quotas = yield* QuotaPolicy
  const heartbeatIntervalMs = yield* Config.Int("OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS").pipe(Config.withDefault(5_000))
  const freshWithinMs = heartbeatFreshWithinMs(heartbeatIntervalMs)

  const lifecycle = (action: WorkerAction) => ({ params }: { readonly params: { readonly id: string } }) =>
    Effect.gen(function*() {
      return { worker: yield* registry.transition(params.id, action, yield* actor, freshWithinMs) }
    })

  const issued = (result: { readonly credential: WorkerCredentialView; readonly plaintext: Redacted.Redacted<string> }) => ({
    credential: result.credential,
    secret: Redacted.value(result.plaintext)
  })

  return handlers.handleAll({
    listPools: () =>
      Effect.gen(function*() {
        return { pools: yield* registry.listPools(yield* actor) }
      }),
    createPool: ({ payload }) =>
      Effect.gen(function*() {
        yield* mayUseMode(payload.mode)
        const orgId = yield* poolOrg(payload.mode, payload.orgId)
        return { pool: yield* registry.createPool({ ...payload, orgId }, yield* actor) }
      }),
    updatePool: ({ params, payload }) =>
      Effect.gen(function*() {
        const by = yield* actor
        // Out of scope is a 404 before anything about the change is judged.
        const current = (yield* registry.listPools(by)).find((pool) => pool.id === params.id)
        if (current === undefined) return yield* new NotFound({ message: `no such pool: ${params.id}` })
        yield* mayUseMode(payload.mode)
        if (payload.mode === "saas_operated" && current.orgId !== null) {
          return yield* new Conflict({ message: "this pool serves one org; create a saas_operated pool instead" })
        }
        if (payload.mode === "self_hosted" && current.orgId === null) {
          return yield* new Conflict({ message: "this pool serves every org; create a self_hosted pool for the org instead" })
        }
        return { pool: yield* registry.updatePool(params.id, payload, by) }
      }),
    listWorkers: () =>
      Effect.gen(function*() {
        return { workers: yield* registry.listWorkers(yield* actor, freshWithinMs) }
      }),
    registerWorker: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* CurrentCaller
        // An org's own workers count against its active_workers quota; a platform operator is not held to it.
        const activeWorkers = caller.kind === "org" ? (yield* quotas.forOrg(caller.orgId)).active_workers : undefined
        return { worker: yield* registry.registerWorker({ ...payload, activeWorkers }, yield* actor).pipe(quotas.counted) }
      }),
    activate: lifecycle("activate"),
    pause: lifecycle("pause"),
    drain: lifecycle("drain"),
    resume: lifecycle("resume"),
    retire: lifecycle("retire"),
    revoke: lifecycle("revoke"),
    listCredentials: ({ params }) =>
      Effect.gen(function*() {
        return { credentials: yield* registry.listCredentials(params.id, yield* actor) }
      }),
    issueCredential: ({ params, payload }) =>
      Effect.gen(function*() {
        return issued(yield* registry.issueCredential(params.id, payload, yield* actor))
      }),
    rotateCredential: ({ params, payload }) =>
      Effect.gen(function*() {
        return issued(yield* registry.rotateCredential(params.id, params.cid, payload, yield* actor))
      }),
    revokeCredential: ({ params }) =>
      Effect.gen(function*() {
        return { credential: yield* registry.revokeCredential(params.id, params.cid, yield* actor) }
      })
  })
}))
