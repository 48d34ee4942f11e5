import { PLATFORM_TOKEN_SCOPES, TokenScope } from "@cowork/domain"
import { Audit, Tokens } from "@cowork/services"
import { Console, Effect, Option, Redacted, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { printJson, userErrors } from "./AdminRegistry.ts"

/** How the admin CLI appears in audit rows: it acts with database access, not with a token. */
export const CLI_ACTOR = "cli:admin"

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
 * `cowork admin token create --scopes web,operator [--name] [--expires-in-ms] [--org | --platform]`: issues an API
 * token and prints it once. Without `--org` it uses the bootstrap org (creating it, and printing its owner token, on
 * a fresh database). `--platform --scopes operator` issues a platform operator token, bound to no org: the only
 * principal that manages saas_operated pools and sees every org's operations. Only this command creates one.
 */
const create = Command.make("create", {
  scopes: Flag.String("scopes").pipe(Flag.withDescription("Comma-separated scopes: web, admin, operator, worker")),
  name: Flag.String("name").pipe(Flag.withDescription("Label shown in token lists"), Flag.withDefault("cli")),
  expiresInMs: Flag.Int("expires-in-ms").pipe(Flag.withDescription("Lifetime in milliseconds"), Flag.optional),
  org: Flag.String("org").pipe(Flag.withDescription("Org id (default: the bootstrap org)"), Flag.optional),
  platform: Flag.Boolean("platform").pipe(
    Flag.withDescription("A platform operator token (no org; scopes: operator only)"),
    Flag.withDefault(false)
  )
}, (input) =>
  Effect.gen(function*() {
    const scopes = yield* parseScopes(input.scopes)
    const tokens = yield* Tokens
    const expiresInMs = Option.getOrUndefined(input.expiresInMs)
    if (input.platform) {
      if (Option.isSome(input.org)) {
        return yield* new CliError.UserError({ cause: input.org, userMessage: "--platform tokens belong to no org: omit --org" })
      }
      const outside = scopes.filter((scope) => !PLATFORM_TOKEN_SCOPES.includes(scope))
      if (outside.length > 0) {
        return yield* new CliError.UserError({
          cause: input.scopes,
          userMessage: `platform tokens carry only ${PLATFORM_TOKEN_SCOPES.join(", ")} (got ${outside.join(", ")})`
        })
      }
      const issued = yield* tokens.issuePlatform({ name: input.name, scopes, expiresInMs })
      return yield* Console.log(Redacted.value(issued.token))
    }
    const orgId = Option.isSome(input.org)
      ? input.org.value
      : yield* tokens.bootstrap("default").pipe(Effect.tap(({ owner }) =>
        owner === undefined
          ? Effect.void
          : Console.log(`owner token (bootstrap org, shown once): ${Redacted.value(owner.token)}`)
      ), Effect.map(({ orgId }) => orgId))
    const issued = yield* tokens.issue({ orgId, name: input.name, scopes, expiresInMs }).pipe(userErrors)
    yield* (yield* Audit).record({
      orgId,
      actor: CLI_ACTOR,
      action: "token.created",
      target: `token:${issued.tokenId}`,
      details: { name: input.name, scopes: [...scopes], expiresAt: issued.expiresAt }
    })
    yield* Console.log(Redacted.value(issued.token))
  })).pipe(Command.withDescription("Issue an API token; the plaintext is printed once and never stored"))

/** `cowork admin token list [--org ORG]`: one JSON document, metadata only (never a secret). */
const list = Command.make("list", {
  org: Flag.String("org").pipe(Flag.withDescription("Only this org's tokens (default: every token)"), Flag.optional)
}, (input) =>
  Effect.gen(function*() {
    const tokens = yield* (yield* Tokens).listAll({ orgId: Option.getOrUndefined(input.org) })
    yield* printJson({ tokens })
  })).pipe(Command.withDescription("List API tokens: id, org, name, scopes, created/expires/last-used/revoked"))

/** `cowork admin token revoke <token-id>`: revoked at once; the token's open event streams end within seconds. */
const revoke = Command.make("revoke", {
  id: Argument.String("token-id").pipe(Argument.withDescription("Token id (the part after occ_)"))
}, (input) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const token = yield* tokens.revoke(input.id, {}).pipe(userErrors)
    const orgId = (yield* tokens.listAll({})).find((listed) => listed.id === token.id)?.orgId
    if (orgId != null) {
      yield* (yield* Audit).record({ orgId, actor: CLI_ACTOR, action: "token.revoked", target: `token:${token.id}`, details: { name: token.name } })
    }
    yield* printJson({ token })
  })).pipe(Command.withDescription("Revoke an API token (org or platform); its open SSE streams end within seconds"))

export const command = Command.make("token").pipe(
  Command.withDescription("API tokens"),
  Command.withSubcommands([create, list, revoke])
)
