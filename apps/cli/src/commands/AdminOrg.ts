import { Tokens } from "@cowork/services"
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { printJson } from "./AdminRegistry.ts"

/** `cowork admin org create --name NAME`: a new org (no token; issue one with `token create --org`). */
export const create = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("Org name"))
}, (input) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const { orgId } = yield* tokens.createOrg(input.name)
    const org = (yield* tokens.listOrgs).find((candidate) => candidate.id === orgId)
    yield* printJson({ org })
  })).pipe(Command.withDescription("Create an org; then issue its first token with `cowork admin token create --org <id>`"))

export const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    yield* printJson({ orgs: yield* (yield* Tokens).listOrgs })
  })).pipe(Command.withDescription("List orgs: id, name, createdAt"))

export const command = Command.make("org").pipe(
  Command.withDescription("Orgs (tenants)"),
  Command.withSubcommands([create, list])
)
