import { TokenScope } from "@cowork/domain"
import { Tokens } from "@cowork/services"
import { Console, Effect, Option, Redacted, Schema } from "effect"
import { CliError, Command, Flag } from "effect/cli"

const parseScopes = (raw: string) => {
  const scopes = raw.split(",").map((s) => s.trim()).filter((s) => s !== "")
  const decoded = scopes.map((scope) => Schema.decodeUnknownOption(TokenScope)(scope))
  const bad = scopes.filter((_, i) => Option.isNone(decoded[i]!))
  return bad.length > 0 || scopes.length === 0
    ? Effect.fail(new CliError.UserError({
      cause: raw,
      userMessage: `--scopes must list web, admin, operator or worker (got "${raw}")`
    }))
    : Effect.succeed(scopes as ReadonlyArray<TokenScope>)
}

/**
 * `cowork admin token create --scopes web,operator [--name] [--expires-in-ms] [--org]`: issues an API token and
 * prints it once. Without `--org` it uses the bootstrap org (creating it, and printing its owner token, on a
 * fresh database).
 */
export const create = Command.make("create", {
  scopes: Flag.String("scopes").pipe(Flag.withDescription("Comma-separated scopes: web, admin, operator, worker")),
  name: Flag.String("name").pipe(Flag.withDescription("Label shown in token lists"), Flag.withDefault("cli")),
  expiresInMs: Flag.Int("expires-in-ms").pipe(Flag.withDescription("Lifetime in milliseconds"), Flag.optional),
  org: Flag.String("org").pipe(Flag.withDescription("Org id (default: the bootstrap org)"), Flag.optional)
}, (input) =>
  Effect.gen(function*() {
    const scopes = yield* parseScopes(input.scopes)
    const tokens = yield* Tokens
    const orgId = Option.isSome(input.org)
      ? input.org.value
      : yield* tokens.bootstrap("default").pipe(Effect.tap(({ owner }) =>
        owner === undefined
          ? Effect.void
          : Console.log(`owner token (bootstrap org, shown once): ${Redacted.value(owner.token)}`)
      ), Effect.map(({ orgId }) => orgId))
    const issued = yield* tokens.issue({
      orgId,
      name: input.name,
      scopes,
      expiresInMs: Option.getOrUndefined(input.expiresInMs)
    })
    yield* Console.log(Redacted.value(issued.token))
  })).pipe(Command.withDescription("Issue an API token; the plaintext is printed once and never stored"))
