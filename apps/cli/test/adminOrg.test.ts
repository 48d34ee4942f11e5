import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { runCli } from "../../../test/support/CoworkProcess.ts"

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n")[0]!)

describe("cowork admin org", () => {
  it.live("create, a token, offboard: the report shows what ended and that nothing remains; offboarding again ends nothing", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const cli = (...args: ReadonlyArray<string>) => runCli(["admin", ...args], { OPEN_COWORK_DATABASE_URL: url })
      const orgId: string = json((yield* cli("org", "create", "--name", "leaving")).stdout).org.id
      assert.match(orgId, /^org_/)
      yield* cli("token", "create", "--scopes", "web", "--org", orgId)
      const report = json((yield* cli("org", "offboard", orgId)).stdout)
      assert.strictEqual(report.orgId, orgId)
      assert.deepInclude(report.ended, { apiTokens: 1 })
      assert.isTrue(report.complete)
      assert.isTrue(Object.values(report.remaining).every((count) => count === 0), JSON.stringify(report.remaining))
      const again = json((yield* cli("org", "offboard", orgId)).stdout)
      assert.deepInclude(again.ended, { apiTokens: 0 })
      const missing = yield* Effect.flip(cli("org", "offboard", "org_missing"))
      assert.include(missing.message, "org org_missing not found")
    }), { timeout: 120_000 })
})
