import { assert, describe, it } from "@effect/vitest"
import { Database } from "@cowork/postgres"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { inject } from "vitest"
import { startLocalPostgres } from "../src/ops/LocalPostgres.ts"
import { ensureDatabase, query } from "../src/ops/Procs.ts"
import { runCliResult } from "../../../test/support/CoworkProcess.ts"

/**
 * `cowork backup` / `cowork restore` as the operator runs them, against a Debian PostgreSQL 15 server the test starts
 * (the embedded 18 has no pg_dump; .ci/run installs postgresql-15). The full runbook with real roles is
 * `cowork drill restore` (apps/cli/test/drills, its own CI step).
 */

const pg15 = "/usr/lib/postgresql/15/bin"
const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-backup-test-"))

describe("cowork backup / restore", () => {
  it.effect("pg_dump 15 refuses the embedded Postgres 18 with one line saying what to install", () =>
    Effect.gen(function*() {
      const url = inject("adminDatabaseUrl")
      const result = yield* runCliResult(["backup", "--to", Path.join(tmp(), "b")], {
        OPEN_COWORK_DATABASE_URL: url,
        OPEN_COWORK_PG_BIN_DIR: pg15,
        OPEN_COWORK_OBJECT_STORE_URI: `file://${tmp()}`
      })
      const server = Number((yield* Effect.promise(() => query<{ v: string }>(url, "SELECT current_setting('server_version_num') AS v")))[0]!.v) / 10_000 | 0
      // OPEN_COWORK_TEST_DATABASE_URL may name an older server; the embedded one (the default) is 18.
      if (server <= 15) return
      assert.strictEqual(result.code, 1)
      assert.include(result.stderr, `pg_dump 15.`)
      assert.include(result.stderr, `cannot dump a PostgreSQL ${server} server`)
      assert.include(result.stderr, "OPEN_COWORK_PG_BIN_DIR")
      assert.notInclude(result.stderr, "cowork-test", "no password in the message")
    }))

  it.live("backs up and restores rows and objects; refuses a corrupt backup, a non-empty target and attached workers", () =>
    Effect.gen(function*() {
      const work = tmp()
      const server = yield* Effect.promise(() => startLocalPostgres(Path.join(work, "pg")))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.stop()))
      yield* Effect.promise(() => ensureDatabase(server.url("postgres"), "source"))
      const source = server.url("source")
      const storeDir = Path.join(work, "objects")
      const env = { OPEN_COWORK_DATABASE_URL: source, OPEN_COWORK_OBJECT_STORE_URI: `file://${storeDir}`, OPEN_COWORK_DATA_DIR: work }
      assert.strictEqual((yield* runCliResult(["migrate"], env)).code, 0)
      yield* Effect.promise(() => query(source, `INSERT INTO cloud_orgs (id, name) VALUES ('org_a', 'a'), ('org_b', 'b')`))
      yield* Effect.promise(() => query(source, `INSERT INTO cloud_sessions (id, org_id, title) VALUES ('ses_1', 'org_a', 'one'), ('ses_2', 'org_b', 'two')`))
      // A database that missed one migration between applied ones: the highest id alone would not show it.
      yield* Effect.promise(() => query(source, `DELETE FROM cloud_schema_migrations WHERE id = 10`))
      const appliedIds = (yield* Effect.promise(() => query<{ id: number }>(source, `SELECT id FROM cloud_schema_migrations ORDER BY id`))).map((r) => Number(r.id))
      Fs.mkdirSync(Path.join(storeDir, "data", "artifacts", "org_a"), { recursive: true })
      Fs.writeFileSync(Path.join(storeDir, "data", "artifacts", "org_a", "x.bin"), Buffer.from("artifact bytes"))
      Fs.mkdirSync(Path.join(storeDir, "data", "checkpoints", "org_a", "ses_1", "manifests"), { recursive: true })
      Fs.writeFileSync(Path.join(storeDir, "data", "checkpoints", "org_a", "ses_1", "manifests", "1.json"), "{}")

      const backupDir = Path.join(work, "backup")
      const backedUp = yield* runCliResult(["backup", "--to", backupDir], env)
      assert.strictEqual(backedUp.code, 0, backedUp.stderr)
      const summary = JSON.parse(backedUp.stdout.trim().split("\n").at(-1)!)
      assert.strictEqual(summary.tables.cloud_orgs, 2)
      assert.strictEqual(summary.tables.cloud_sessions, 2)
      assert.strictEqual(summary.objectStore.objects, 2)
      assert.strictEqual(summary.source.serverMajor, 15)
      assert.notInclude(backedUp.stdout, storeDir)
      const manifest = JSON.parse(Fs.readFileSync(Path.join(backupDir, "manifest.json"), "utf8"))
      assert.match(manifest.postgres.file, /^postgres\/open-cowork-\d{8}T\d{6}Z\.dump$/)
      assert.deepStrictEqual(manifest.source.migrationIds, appliedIds, "every applied migration id")
      assert.notInclude(manifest.source.migrationIds, 10)
      assert.strictEqual(manifest.source.latestMigrationId, appliedIds.at(-1))
      assert.deepStrictEqual(manifest.objectStore.entries.map((e: { key: string }) => e.key), ["artifacts/org_a/x.bin", "checkpoints/org_a/ses_1/manifests/1.json"])
      // A second backup into the same directory is refused.
      assert.strictEqual((yield* runCliResult(["backup", "--to", backupDir], env)).code, 1)

      const restoreTo = (database: string, store: string, dir = backupDir) =>
        runCliResult(["restore", "--from", dir, "--database-url", server.url(database), "--object-store-uri", `file://${Path.join(work, store)}`], { OPEN_COWORK_DATA_DIR: work })

      // A corrupt copy: one object's bytes changed.
      const corrupt = Path.join(work, "corrupt")
      Fs.cpSync(backupDir, corrupt, { recursive: true })
      Fs.writeFileSync(Path.join(corrupt, "object-store", "artifacts", "org_a", "x.bin"), "tampered")
      const refusedCorrupt = yield* restoreTo("r_corrupt", "store-corrupt", corrupt)
      assert.strictEqual(refusedCorrupt.code, 1)
      assert.include(refusedCorrupt.stderr, "backup corrupt: object artifacts/org_a/x.bin does not match its sha256")

      // A manifest that records a migration the dump does not hold: the restored set is compared, and the restore fails.
      const otherSet = Path.join(work, "other-set")
      Fs.cpSync(backupDir, otherSet, { recursive: true })
      Fs.writeFileSync(Path.join(otherSet, "manifest.json"), JSON.stringify({
        ...manifest,
        source: { ...manifest.source, migrationIds: [...appliedIds, 10].sort((a, b) => a - b) }
      }))
      const refusedSet = yield* restoreTo("r_set", "store-set", otherSet)
      assert.strictEqual(refusedSet.code, 1)
      assert.include(refusedSet.stderr, "restored migrations differ from the manifest: missing 10; unexpected none")

      // A worker connected to the target: refused, nothing restored.
      yield* Effect.promise(() => ensureDatabase(server.url("postgres"), "r_ok"))
      // The connection a worker holds (its pool names itself `cowork-worker`), open while restore runs.
      const refusedAttached = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe("SELECT 1")
        return yield* restoreTo("r_ok", "store-ok")
      }).pipe(Effect.provide(Layer.fresh(Database.layer({ url: Redacted.make(server.url("r_ok")), maxConnections: 1, applicationName: "cowork-worker" }))))
      assert.strictEqual(refusedAttached.code, 1)
      assert.include(refusedAttached.stderr, "refusing to restore while workers are attached to r_ok: cowork-worker (1 connection)")
      assert.isFalse(Fs.existsSync(Path.join(work, "store-ok", "data", "artifacts")), "no object written")

      const restored = yield* restoreTo("r_ok", "store-ok")
      assert.strictEqual(restored.code, 0, restored.stderr)
      const result = JSON.parse(restored.stdout.trim().split("\n").at(-1)!).restored
      assert.deepStrictEqual(result.tables.cloud_sessions, { before: 2, after: 2 })
      assert.deepStrictEqual(result.objects, { restored: 2, bytes: 16, verified: true })
      // The restored set is the backup's; the one this build knows and it lacks is pending (what /readyz reports).
      assert.deepStrictEqual(result.migrations, { applied: appliedIds.length, comparedWithManifest: true, pending: [10] })
      const rows = yield* Effect.promise(() => query<{ id: string }>(server.url("r_ok"), "SELECT id FROM cloud_sessions ORDER BY id"))
      assert.deepStrictEqual(rows.map((r) => r.id), ["ses_1", "ses_2"])
      assert.strictEqual(Fs.readFileSync(Path.join(work, "store-ok", "data", "artifacts", "org_a", "x.bin"), "utf8"), "artifact bytes")

      // The restored database is no longer new: a second restore into it is refused.
      const again = yield* restoreTo("r_ok", "store-again")
      assert.strictEqual(again.code, 1)
      assert.include(again.stderr, "already has")
    }).pipe(Effect.scoped), 120_000)
})
