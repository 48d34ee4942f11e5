import { Database, PgByokStore } from "@cowork/postgres"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { makeByokStore, SecretAdapter } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { runCli } from "../../../test/support/CoworkProcess.ts"

/** `cowork admin secrets rotate-kek` as a real process: old ciphertext stays readable, BYOK keys are rewrapped. */

describe("cowork admin secrets rotate-kek", () => {
  it.live("adds a new first key, keeps the old one, rewraps BYOK envelopes; old envelopes still open", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-kek-"))
      const keyFile = Path.join(dir, "secret.key")
      const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_CLOUD_SECRET_KEY_REF: `file:${keyFile}`, OPEN_COWORK_DATA_DIR: dir }
      yield* runCli(["migrate"], env)

      const db = Database.layer({ url: Redacted.make(url), maxConnections: 2 })
      const before = LocalKeyFileSecretAdapter.make(keyFile)
      const oldEnvelope = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ('org_kek', 'kek')`)
        const store = yield* makeByokStore(yield* PgByokStore.rows).pipe(Effect.provideService(SecretAdapter, before))
        yield* store.put("org_kek", "openai", { apiKey: Redacted.make("sk-before-rotation-1") })
        // Something else sealed before the rotation (a checkpoint chunk, say) and never rewrapped.
        return yield* before.encrypt("org_kek", new TextEncoder().encode("checkpoint bytes"), "ckpt")
      }).pipe(Effect.provide(db))
      const oldId = Fs.readFileSync(keyFile, "utf8").trim().split("\n")

      const out = yield* runCli(["admin", "secrets", "rotate-kek"], env)
      const result = JSON.parse(out.stdout.trim().split("\n")[0]!)
      assert.deepStrictEqual(result.byok, { rewrapped: 1, failed: 0 })
      assert.strictEqual(result.retained.length, 1)
      assert.notStrictEqual(result.current, result.retained[0])
      const lines = Fs.readFileSync(keyFile, "utf8").trim().split("\n")
      assert.strictEqual(lines.length, 2)
      assert.strictEqual(lines[1], oldId[0], "the old key is kept below the new one")
      assert.strictEqual(Fs.statSync(keyFile).mode & 0o777, 0o600)
      assert.notInclude(out.stdout + out.stderr, lines[0]!, "no key printed")

      const after = LocalKeyFileSecretAdapter.make(keyFile)
      assert.strictEqual(new TextDecoder().decode(yield* after.decrypt("org_kek", oldEnvelope, "ckpt")), "checkpoint bytes")
      const keyIds = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* makeByokStore(yield* PgByokStore.rows).pipe(Effect.provideService(SecretAdapter, after))
        assert.strictEqual(Redacted.value((yield* store.reveal("org_kek", "openai")).apiKey), "sk-before-rotation-1")
        return (yield* sql.unsafe<{ key_id: string }>(`SELECT key_id FROM cloud_byok_keys`)).map((r) => r.key_id)
      }).pipe(Effect.provide(db))
      assert.deepStrictEqual(keyIds, [result.current])
      Fs.rmSync(dir, { recursive: true, force: true })
    }), 120_000)
})
