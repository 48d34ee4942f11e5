import { Api, CurrentPrincipal, heartbeatFreshWithinMs, type WorkerAction, type WorkerCredentialView } from "@cowork/domain"
import { type Actor, WorkerRegistry } from "@cowork/services"
import { Config, Effect, Redacted } from "effect"
import { HttpApiBuilder } from "effect/http-api"

const actor = Effect.gen(function*() {
  const principal = yield* CurrentPrincipal
  return { orgId: principal.orgId, actor: `token:${principal.tokenId}` } satisfies Actor
})

export const layer = HttpApiBuilder.group(Api, "workerAdmin", Effect.fn(function*(handlers) {
  const registry = yield* WorkerRegistry
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
    listPools: () => Effect.map(registry.listPools, (pools) => ({ pools })),
    createPool: ({ payload }) =>
      Effect.gen(function*() {
        return { pool: yield* registry.createPool(payload, yield* actor) }
      }),
    updatePool: ({ params, payload }) =>
      Effect.gen(function*() {
        return { pool: yield* registry.updatePool(params.id, payload, yield* actor) }
      }),
    listWorkers: () => Effect.map(registry.listWorkers(freshWithinMs), (workers) => ({ workers })),
    registerWorker: ({ payload }) =>
      Effect.gen(function*() {
        return { worker: yield* registry.registerWorker(payload, yield* actor) }
      }),
    activate: lifecycle("activate"),
    pause: lifecycle("pause"),
    drain: lifecycle("drain"),
    resume: lifecycle("resume"),
    retire: lifecycle("retire"),
    revoke: lifecycle("revoke"),
    listCredentials: ({ params }) =>
      Effect.map(registry.listCredentials(params.id), (credentials) => ({ credentials })),
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
