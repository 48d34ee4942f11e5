import { Database } from "@cowork/postgres"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Crypto from "node:crypto"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { runCli } from "../../../test/support/CoworkProcess.ts"

/** `cowork admin pool|worker|credential …` as a real process against a fresh database, checked through SQL. */

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n")[0]!)

describe("cowork admin pool / worker / credential", () => {
  it.live("registers a pool and a worker, runs the lifecycle, and issues, rotates and revokes credentials", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const env = { OPEN_COWORK_DATABASE_URL: url }
      const cli = (...args: ReadonlyArray<string>) => runCli(["admin", ...args], env)

      const { pool } = json((yield* cli(
        "pool", "create", "--name", "eu-1", "--mode", "self_hosted", "--max-workers", "2", "--max-concurrent-work", "8",
        "--region", "eu-west-1", "--capabilities", "prompt,files"
      )).stdout)
      assert.match(pool.id, /^pool_/)
      assert.deepInclude(pool, { name: "eu-1", mode: "self_hosted", maxWorkers: 2, maxConcurrentWork: 8, region: "eu-west-1", status: "active" })
      assert.deepStrictEqual(pool.capabilities, ["prompt", "files"])

      const { worker } = json((yield* cli("worker", "register", "--pool", pool.id, "--id", "eu-1-w1")).stdout)
      assert.deepInclude(worker, { id: "eu-1-w1", poolId: pool.id, status: "pending" })

      const issued = (yield* cli("credential", "issue", "eu-1-w1", "--expires-in-seconds", "3600")).stdout.trim().split("\n")
      const { credential } = JSON.parse(issued[0]!)
      const secret = issued.at(-1)!
      assert.match(secret, new RegExp(`^ocw_${credential.id}_`))
      assert.notInclude(issued[0]!, secret, "the metadata line does not carry the secret")

      assert.strictEqual(json((yield* cli("worker", "activate", "eu-1-w1")).stdout).worker.status, "active")
      assert.strictEqual(json((yield* cli("worker", "drain", "eu-1-w1")).stdout).worker.status, "draining")
      const listed = json((yield* cli("worker", "list")).stdout).workers
      assert.deepStrictEqual(listed.map((w: { id: string; status: string }) => [w.id, w.status]), [["eu-1-w1", "draining"]])
      assert.deepStrictEqual(json((yield* cli("pool", "list")).stdout).pools.map((p: { id: string }) => p.id), [pool.id])

      const illegal = yield* Effect.flip(cli("worker", "activate", "eu-1-w1"))
      assert.include(illegal.message, "illegal transition for worker eu-1-w1: draining → active (activate)")

      const rotated = (yield* cli("credential", "rotate", "eu-1-w1", credential.id)).stdout.trim().split("\n")
      const replacement = JSON.parse(rotated[0]!).credential
      assert.strictEqual(replacement.replacesId, credential.id)
      assert.match(rotated.at(-1)!, new RegExp(`^ocw_${replacement.id}_`))
      const revokedOut = (yield* cli("credential", "revoke", "eu-1-w1", credential.id)).stdout
      assert.isNotNull(json(revokedOut).credential.revokedAt)
      assert.notInclude(revokedOut, "ocw_", "revoke prints no secret")
      const listOut = (yield* cli("credential", "list", "eu-1-w1")).stdout
      assert.strictEqual(json(listOut).credentials.length, 2)
      assert.notInclude(listOut, secret.slice(-20))

      // What the CLI wrote: only hashes of the secrets, and an audit row per change.
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const dump = JSON.stringify(yield* sql`SELECT * FROM cloud_worker_credentials`)
        const secretPart = secret.slice(`ocw_${credential.id}_`.length)
        assert.notInclude(dump, secretPart)
        assert.include(dump, Crypto.createHash("sha256").update(secretPart, "utf8").digest("hex"))
        const actions = (yield* sql<{ action: string }>`SELECT action FROM cloud_audit_events ORDER BY id`).map((r) => r.action)
        assert.includeMembers(actions, [
          "worker_credential.issued", "worker.active", "worker.draining", "worker_credential.rotated", "worker_credential.revoked"
        ])
        const actors = yield* sql<{ actor: string }>`SELECT DISTINCT actor FROM cloud_audit_events`
        assert.isTrue(actors.every((row) => row.actor.startsWith("cli:")))
      }).pipe(Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "admin-test" })))

      yield* cli("worker", "revoke", "eu-1-w1")
      const terminal = yield* Effect.flip(cli("credential", "issue", "eu-1-w1"))
      assert.include(terminal.message, "worker eu-1-w1 is revoked")
    }), { timeout: 120_000 })
})
