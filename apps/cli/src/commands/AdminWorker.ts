import type { WorkerAction } from "@cowork/domain"
import { WorkerRegistry } from "@cowork/services"
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { cliActor, freshWithinMs, printJson, userErrors } from "./AdminRegistry.ts"

/** `cowork admin worker register --pool pool_… [--id eu-1-w1] [--name]`: the worker starts `pending`. */
const register = Command.make("register", {
  pool: Flag.String("pool").pipe(Flag.withDescription("Pool id (pool_…)")),
  id: Flag.String("id").pipe(Flag.withDescription("Worker id, its OPEN_COWORK_CLOUD_WORKER_ID (default: generated)"), Flag.optional),
  name: Flag.String("name").pipe(Flag.withDescription("Label (default: the id)"), Flag.optional)
}, (input) =>
  Effect.gen(function*() {
    const worker = yield* (yield* WorkerRegistry).registerWorker({
      poolId: input.pool,
      id: Option.getOrUndefined(input.id),
      name: Option.getOrUndefined(input.name)
    }, cliActor).pipe(userErrors)
    yield* printJson({ worker })
  })).pipe(Command.withDescription("Register a worker in a pool, status pending (POST /api/admin/workers)"))

const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    yield* printJson({ workers: yield* (yield* WorkerRegistry).listWorkers(cliActor, yield* freshWithinMs) })
  })).pipe(Command.withDescription("List registered workers with status and health (GET /api/admin/workers)"))

const lifecycle = (action: WorkerAction, description: string) =>
  Command.make(action, { id: Argument.String("worker-id").pipe(Argument.withDescription("Worker id")) }, ({ id }) =>
    Effect.gen(function*() {
      const worker = yield* (yield* WorkerRegistry).transition(id, action, cliActor, yield* freshWithinMs).pipe(userErrors)
      yield* printJson({ worker })
    })).pipe(Command.withDescription(`${description} (POST /api/admin/workers/:id/${action})`))

export const command = Command.make("worker").pipe(
  Command.withDescription("Registered workers and their lifecycle"),
  Command.withSubcommands([
    register,
    list,
    lifecycle("activate", "pending → active"),
    lifecycle("pause", "Stop claiming and renewing"),
    lifecycle("drain", "Renew held leases, claim nothing new"),
    lifecycle("resume", "draining / paused → active"),
    lifecycle("retire", "Terminal; revokes its credentials"),
    lifecycle("revoke", "Emergency: revokes credentials and expires its leases")
  ])
)
