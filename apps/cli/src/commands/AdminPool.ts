import { PoolMode, PoolStatus } from "@cowork/domain"
import { Tokens, WorkerRegistry } from "@cowork/services"
import { Effect, Option } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { cliActor, parseList, printJson, userErrors } from "./AdminRegistry.ts"

const optionalString = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)
const optionalInt = (name: string, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(description), Flag.optional)

/**
 * `cowork admin pool create --name eu-1 --mode self_hosted --max-workers 4 --max-concurrent-work 16 [--org ORG]
 * [--region] [--capabilities a,b]`. A self-hosted pool serves one org (default: the bootstrap org); a saas_operated
 * pool serves every org.
 */
const create = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("Pool name")),
  mode: Flag.Literals("mode", PoolMode.literals).pipe(Flag.withDescription("self_hosted or saas_operated")),
  maxWorkers: Flag.Int("max-workers").pipe(Flag.withDescription("Workers that may be active or draining at once")),
  maxConcurrentWork: Flag.Int("max-concurrent-work").pipe(Flag.withDescription("Live session leases across the pool")),
  region: optionalString("region", "Region / deployment label"),
  capabilities: optionalString("capabilities", "Comma-separated capabilities, e.g. prompt"),
  org: optionalString("org", "self_hosted: the org the pool serves (default: the bootstrap org)")
}, (input) =>
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry
    if (input.mode === "saas_operated" && Option.isSome(input.org)) {
      return yield* new CliError.UserError({ cause: input.org, userMessage: "a saas_operated pool serves every org: omit --org" })
    }
    const orgId = input.mode === "saas_operated"
      ? null
      : Option.isSome(input.org)
      ? input.org.value
      : (yield* (yield* Tokens).bootstrap("default")).orgId
    const pool = yield* registry.createPool({
      name: input.name,
      mode: input.mode,
      orgId,
      maxWorkers: input.maxWorkers,
      maxConcurrentWork: input.maxConcurrentWork,
      region: Option.getOrNull(input.region),
      capabilities: Option.match(input.capabilities, { onNone: () => [], onSome: parseList })
    }, cliActor).pipe(userErrors)
    yield* printJson({ pool })
  })).pipe(Command.withDescription("Create a worker pool (POST /api/admin/worker-pools)"))

const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    yield* printJson({ pools: yield* (yield* WorkerRegistry).listPools(cliActor) })
  })).pipe(Command.withDescription("List worker pools (GET /api/admin/worker-pools)"))

/** `cowork admin pool update <poolId> [--status active|draining|paused] [--max-workers] …` */
const update = Command.make("update", {
  id: Argument.String("pool-id").pipe(Argument.withDescription("Pool id (pool_…)")),
  name: optionalString("name", "New name"),
  mode: Flag.Literals("mode", PoolMode.literals).pipe(Flag.withDescription("self_hosted or saas_operated"), Flag.optional),
  status: Flag.Literals("status", PoolStatus.literals).pipe(Flag.withDescription("active, draining or paused"), Flag.optional),
  maxWorkers: optionalInt("max-workers", "Workers that may be active or draining at once"),
  maxConcurrentWork: optionalInt("max-concurrent-work", "Live session leases across the pool"),
  region: optionalString("region", "Region / deployment label"),
  capabilities: optionalString("capabilities", "Comma-separated capabilities (replaces the list)")
}, (input) =>
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry
    const pool = yield* registry.updatePool(input.id, {
      name: Option.getOrUndefined(input.name),
      mode: Option.getOrUndefined(input.mode),
      status: Option.getOrUndefined(input.status),
      maxWorkers: Option.getOrUndefined(input.maxWorkers),
      maxConcurrentWork: Option.getOrUndefined(input.maxConcurrentWork),
      region: Option.getOrUndefined(input.region),
      capabilities: Option.getOrUndefined(Option.map(input.capabilities, parseList))
    }, cliActor).pipe(userErrors)
    yield* printJson({ pool })
  })).pipe(Command.withDescription("Change a pool's limits, region, capabilities or status (PATCH /api/admin/worker-pools/:id)"))

export const command = Command.make("pool").pipe(
  Command.withDescription("Worker pools"),
  Command.withSubcommands([create, list, update])
)
