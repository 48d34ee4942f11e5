import { Database, PgTokens } from "@cowork/postgres"
import { Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { runCli, runCliResult } from "../../../test/support/CoworkProcess.ts"

/** Issue 8 items 1, 5 and 10 from the CLI: orgs, platform operator tokens, token list / revoke, one-line errors. */

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!)

/**
 * A failed command's stderr without the JSON log lines (migrations, pool closed) and the CLI's `ERROR` header: the
 * message lines a user reads.
 */
const failure = (result: { readonly code: number; readonly stderr: string }) => {
  assert.notStrictEqual(result.code, 0, "the command fails")
  return result.stderr.split("\n").map((line) => line.trim())
    .filter((line) => line !== "" && line !== "ERROR" && !line.startsWith("{\"timestamp\""))
}

describe("cowork admin org / token", () => {
  it.live("an admin command's log lines name the CLI and the command, not the all-in-one role", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const { stderr } = yield* runCli(["admin", "org", "create", "--name", "logged"], { OPEN_COWORK_DATABASE_URL: url })
      const lines = stderr.split("\n").filter((line) => line.startsWith("{\"timestamp\"")).map((line) => JSON.parse(line))
      assert.isAbove(lines.length, 0, stderr)
      for (const line of lines) assert.deepInclude(line, { role: "cli", command: "admin org create" }, JSON.stringify(line))
    }))

  it.live("org create|list; token create --org <unknown> is a one-line error; --platform tokens; token list|revoke", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const cli = (...args: ReadonlyArray<string>) => runCli(["admin", ...args], { OPEN_COWORK_DATABASE_URL: url })
      const failing = (...args: ReadonlyArray<string>) =>
        Effect.map(runCliResult(["admin", ...args], { OPEN_COWORK_DATABASE_URL: url }), failure)

      const unknown = yield* failing("token", "create", "--scopes", "web", "--org", "org_nope")
      assert.deepStrictEqual(unknown, ["no such org: org_nope"], "one line, no SqlError stack")

      const { org } = json((yield* cli("org", "create", "--name", "acme")).stdout)
      assert.match(org.id, /^org_/)
      assert.strictEqual(org.name, "acme")
      const { orgs } = json((yield* cli("org", "list")).stdout)
      assert.include(orgs.map((o: { id: string }) => o.id), org.id)

      const orgToken = (yield* cli("token", "create", "--scopes", "web,admin", "--org", org.id, "--name", "acme-ci")).stdout.trim()
      assert.match(orgToken, /^occ_/)
      const platform = (yield* cli("token", "create", "--platform", "--scopes", "operator", "--name", "ops")).stdout.trim()
      assert.match(platform, /^occ_/)
      const refused = yield* failing("token", "create", "--platform", "--scopes", "web")
      assert.deepStrictEqual(refused, ["platform tokens carry only operator (got web)"])

      const listOut = (yield* cli("token", "list")).stdout
      const { tokens } = json(listOut)
      const orgTokenId = orgToken.split("_")[1]!
      const platformId = platform.split("_")[1]!
      assert.deepInclude(tokens.find((t: any) => t.id === orgTokenId), { orgId: org.id, kind: "org", name: "acme-ci", revokedAt: null })
      assert.deepInclude(tokens.find((t: any) => t.id === platformId), { orgId: null, kind: "platform", scopes: ["operator"] })
      assert.notInclude(listOut, orgToken.split("_").slice(2).join("_"), "never a secret")
      assert.notInclude(listOut, platform.split("_").slice(2).join("_"), "never a secret")
      const { tokens: acmeOnly } = json((yield* cli("token", "list", "--org", org.id)).stdout)
      assert.deepStrictEqual(acmeOnly.map((t: any) => t.id), [orgTokenId])

      yield* Effect.gen(function*() {
        const principal = yield* (yield* Tokens).authenticate(Redacted.make(platform))
        assert.deepStrictEqual(principal, { kind: "platform", tokenId: platformId, scopes: ["operator"] })
      }).pipe(Effect.provide(PgTokens.layer.pipe(
        Layer.provide(Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "admin-test" }))
      )))

      const { token } = json((yield* cli("token", "revoke", orgTokenId)).stdout)
      assert.strictEqual(token.id, orgTokenId)
      assert.isString(token.revokedAt)
      assert.deepStrictEqual(yield* failing("token", "revoke", "nosuchtoken"), ["no such token: nosuchtoken"])
    }), { timeout: 120_000 })
})
