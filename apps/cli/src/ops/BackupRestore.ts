import { appliedMigrationIds, Database, pendingOf } from "@cowork/postgres"
import { ObjectStore } from "@cowork/services"
import { Effect, Layer, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import {
  checkDumpable,
  connectionFor,
  databaseOf,
  describeUrl,
  findProgram,
  majorOfVersionNum,
  PgToolError,
  programVersion,
  run,
  withDatabase
} from "./PgTools.ts"

/**
 * `cowork backup` and `cowork restore` (docs/runbooks/backup-restore.md).
 *
 * A backup is a directory:
 *   manifest.json                       what is in it: per-table row counts, checksums, versions (no credentials)
 *   postgres/open-cowork-<ts>.dump      `pg_dump --format=custom --no-owner --no-acl`
 *   object-store/<key>                  every object of the store's prefix, byte for byte
 *
 * The row counts and the dump come from ONE snapshot: a REPEATABLE READ transaction exports its snapshot, counts
 * every table in it, and pg_dump runs with `--snapshot` while the transaction stays open. The object store is copied
 * after the dump, so it holds every object the dumped rows name (objects are written before their rows, and
 * nothing deletes an object a live row names); objects written later are extra, never missing.
 */

const MANIFEST_FORMAT = 1

export interface ObjectEntry {
  readonly key: string
  readonly size: number
  readonly sha256: string
  readonly contentType?: string | undefined
}

export interface Manifest {
  readonly format: number
  readonly createdAt: string
  readonly source: {
    /** host:port/database, no user or password. */
    readonly database: string
    readonly serverVersion: string
    readonly serverMajor: number
    readonly objectStoreKind: string
    readonly latestMigrationId: number | null
    /**
     * Every migration id applied in the dumped snapshot, ascending (not only the highest: a database can miss one
     * between applied ones). Absent in a backup taken before it was recorded; restore then cannot compare the set.
     */
    readonly migrationIds?: ReadonlyArray<number>
  }
  readonly postgres: {
    readonly file: string
    readonly bytes: number
    readonly sha256: string
    readonly pgDumpVersion: string
    readonly pgDumpMajor: number
    readonly format: "custom"
  }
  /** Exact row counts per table (schema public), in the dumped snapshot. */
  readonly tables: Record<string, number>
  readonly objectStore: {
    readonly objects: number
    readonly bytes: number
    /** sha256 over the sorted `key size sha256` lines: one figure for the whole snapshot. */
    readonly listingSha256: string
    readonly entries: ReadonlyArray<ObjectEntry>
  }
  /** What a backup never holds, by design (the restore drill report repeats it). */
  readonly excluded: ReadonlyArray<string>
}

const EXCLUDED: ReadonlyArray<string> = [
  "secrets: the secret adapter's key material (OPEN_COWORK_CLOUD_SECRET_KEY_REF key file or KMS key), cookie/OIDC secrets, object-store credentials. BYOK keys are in Postgres only as ciphertext; a restore needs the same key material from the secret manager",
  "API token plaintext: only hashes are stored (tokens keep working after a restore)",
  "anything outside the database and the object-store prefix (local workspace dirs of workers, logs, metrics history)"
]

const sha256File = (file: string) =>
  new Promise<string>((resolve, reject) => {
    const hash = Crypto.createHash("sha256")
    Fs.createReadStream(file).on("data", (chunk) => hash.update(chunk)).on("error", reject).on("end", () => resolve(hash.digest("hex")))
  })

const listingSha256 = (entries: ReadonlyArray<ObjectEntry>) =>
  Crypto.createHash("sha256").update([...entries].sort((a, b) => (a.key < b.key ? -1 : 1)).map((e) => `${e.key} ${e.size} ${e.sha256}\n`).join("")).digest("hex")

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

/** Exact row counts of every base table in schema public. */
const countTables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* sql.unsafe<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`
  )
  const counts: Record<string, number> = {}
  for (const { table_name } of tables) {
    const rows = yield* sql.unsafe<{ n: string | number }>(`SELECT count(*) AS n FROM public.${quoteIdent(table_name)}`)
    counts[table_name] = Number(rows[0]!.n)
  }
  return counts
})

const serverVersion = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ num: string; text: string }>(
    `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text`
  )
  return { major: majorOfVersionNum(Number(rows[0]!.num)), version: rows[0]!.text }
})

/** The applied migration ids (empty when the database was never migrated), in the caller's transaction. */
const migrationIds = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const present = yield* sql.unsafe<{ present: boolean }>(`SELECT to_regclass('public.cloud_schema_migrations') IS NOT NULL AS present`)
  return present[0]?.present === true ? yield* appliedMigrationIds : []
})

const sqlLayer = (url: string, applicationName: string) =>
  Layer.fresh(Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName }))

const stamp = (date: Date) => date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

const isEmptyDir = (dir: string) => !Fs.existsSync(dir) || Fs.readdirSync(dir).length === 0

/** Copies every object of the store into `<dir>/object-store/`, with its sha256. */
const copyStoreOut = (dir: string) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const listing = yield* store.list("")
    const entries: Array<ObjectEntry> = []
    for (const item of listing) {
      const object = yield* store.get(item.key)
      const target = Path.join(dir, "object-store", ...item.key.split("/"))
      Fs.mkdirSync(Path.dirname(target), { recursive: true, mode: 0o700 })
      const hash = Crypto.createHash("sha256")
      const fd = Fs.openSync(target, "w", 0o600)
      let size = 0
      yield* Stream.runForEach(object.body, (chunk) =>
        Effect.sync(() => {
          hash.update(chunk)
          Fs.writeSync(fd, chunk)
          size += chunk.byteLength
        })).pipe(Effect.ensuring(Effect.sync(() => Fs.closeSync(fd))))
      entries.push({ key: item.key, size, sha256: hash.digest("hex"), contentType: object.metadata.contentType })
    }
    return { kind: store.kind, entries }
  })

export interface BackupOptions {
  readonly databaseUrl: string
  /** The backup directory; must be empty or absent. */
  readonly dir: string
}

/** Dumps Postgres and copies the object store (the ambient ObjectStore) into `dir`; writes and returns the manifest. */
export const backup = (options: BackupOptions) =>
  Effect.gen(function*() {
    if (!isEmptyDir(options.dir)) {
      return yield* Effect.fail(new PgToolError(`backup directory ${options.dir} is not empty: a backup goes into a new directory`))
    }
    const started = new Date()
    const dumpFile = Path.join("postgres", `open-cowork-${stamp(started)}.dump`)
    const dumpPath = Path.join(options.dir, dumpFile)
    Fs.mkdirSync(Path.dirname(dumpPath), { recursive: true, mode: 0o700 })

    const dumped = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const server = yield* serverVersion
      const pgDumpPath = yield* Effect.try({ try: () => findProgram("pg_dump", server.major), catch: (e) => e as PgToolError })
      const pgDump = { ...(yield* Effect.try({ try: () => programVersion(pgDumpPath), catch: (e) => e as PgToolError })), path: pgDumpPath }
      yield* Effect.try({ try: () => checkDumpable(pgDump, server.major), catch: (e) => e as PgToolError })
      const { migrations, tables } = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`)
        const snapshot = (yield* sql.unsafe<{ id: string }>(`SELECT pg_export_snapshot() AS id`))[0]!.id
        const counts = yield* countTables
        const migrations = yield* migrationIds
        const connection = connectionFor(options.databaseUrl)
        yield* Effect.tryPromise({
          try: () =>
            run(pgDumpPath, [
              "--format=custom",
              "--no-owner",
              "--no-acl",
              `--snapshot=${snapshot}`,
              "--file", dumpPath,
              "--dbname", connection.dbname
            ], connection.env),
          catch: (e) => e as PgToolError
        })
        return { migrations, tables: counts }
      }))
      return { server, pgDump, tables, migrations }
    }).pipe(Effect.provide(sqlLayer(options.databaseUrl, "cowork-backup")))

    const objects = yield* copyStoreOut(options.dir)
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      createdAt: started.toISOString(),
      source: {
        database: describeUrl(options.databaseUrl),
        serverVersion: dumped.server.version,
        serverMajor: dumped.server.major,
        objectStoreKind: objects.kind,
        latestMigrationId: dumped.migrations.at(-1) ?? null,
        migrationIds: dumped.migrations
      },
      postgres: {
        file: dumpFile,
        bytes: Fs.statSync(dumpPath).size,
        sha256: yield* Effect.promise(() => sha256File(dumpPath)),
        pgDumpVersion: dumped.pgDump.version,
        pgDumpMajor: dumped.pgDump.major,
        format: "custom"
      },
      tables: dumped.tables,
      objectStore: {
        objects: objects.entries.length,
        bytes: objects.entries.reduce((sum, e) => sum + e.size, 0),
        listingSha256: listingSha256(objects.entries),
        entries: objects.entries
      },
      excluded: EXCLUDED
    }
    Fs.writeFileSync(Path.join(options.dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 })
    return manifest
  })

const readManifest = (dir: string): Manifest => {
  const file = Path.join(dir, "manifest.json")
  if (!Fs.existsSync(file)) throw new PgToolError(`${file} not found: not a cowork backup directory`)
  const manifest = JSON.parse(Fs.readFileSync(file, "utf8")) as Manifest
  if (manifest.format !== MANIFEST_FORMAT) throw new PgToolError(`unsupported backup manifest format ${String(manifest.format)}`)
  return manifest
}

/** Every file the manifest names is present with its checksum; the first mismatch is an error. */
const verifyBackup = (dir: string, manifest: Manifest) =>
  Effect.gen(function*() {
    const dumpPath = Path.join(dir, manifest.postgres.file)
    if (!Fs.existsSync(dumpPath)) return yield* Effect.fail(new PgToolError(`backup incomplete: ${manifest.postgres.file} is missing`))
    if ((yield* Effect.promise(() => sha256File(dumpPath))) !== manifest.postgres.sha256) {
      return yield* Effect.fail(new PgToolError(`backup corrupt: ${manifest.postgres.file} does not match its sha256 in manifest.json`))
    }
    for (const entry of manifest.objectStore.entries) {
      const file = Path.join(dir, "object-store", ...entry.key.split("/"))
      if (!Fs.existsSync(file)) return yield* Effect.fail(new PgToolError(`backup incomplete: object ${entry.key} is missing`))
      if ((yield* Effect.promise(() => sha256File(file))) !== entry.sha256) {
        return yield* Effect.fail(new PgToolError(`backup corrupt: object ${entry.key} does not match its sha256 in manifest.json`))
      }
    }
    if (listingSha256(manifest.objectStore.entries) !== manifest.objectStore.listingSha256) {
      return yield* Effect.fail(new PgToolError("backup corrupt: the object listing does not match its sha256 in manifest.json"))
    }
  })

/** Application names of the roles that must be at zero during a restore (ControlPlaneDatabase: `cowork-<role>`). */
const BLOCKING_ROLES = ["cowork-worker", "cowork-scheduler", "cowork-gateway", "cowork-all"]

/** Connections of workers / schedulers / gateways / all-in-one processes to `database` on the server. */
const attachedRoles = (database: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ application_name: string; n: string | number }>(
      `SELECT application_name, count(*) AS n FROM pg_stat_activity
       WHERE datname = $1 AND application_name = ANY($2::text[]) GROUP BY application_name ORDER BY application_name`,
      [database, BLOCKING_ROLES]
    )
    return rows.map((row) => ({ role: row.application_name, connections: Number(row.n) }))
  })

const refuseAttached = (url: string) =>
  Effect.gen(function*() {
    const attached = yield* attachedRoles(databaseOf(url)).pipe(Effect.provide(sqlLayer(withDatabase(url, "postgres"), "cowork-restore")))
    if (attached.length > 0) {
      return yield* Effect.fail(new PgToolError(
        `refusing to restore while workers are attached to ${databaseOf(url)}: ${
          attached.map((a) => `${a.role} (${a.connections} connection${a.connections === 1 ? "" : "s"})`).join(", ")
        }. Scale workers, scheduler and gateway to zero first (runbook step 2)`
      ))
    }
  })

export interface RestoreOptions {
  readonly dir: string
  /** The NEW database (created when missing; refused when it already has tables). */
  readonly databaseUrl: string
}

export interface RestoreResult {
  readonly database: string
  readonly tables: Record<string, { readonly before: number; readonly after: number }>
  readonly objects: { readonly restored: number; readonly bytes: number; readonly verified: boolean }
  readonly migrations: {
    /** Migration ids applied in the restored database (equal to the manifest's set, or the restore failed). */
    readonly applied: number
    /** False for a backup whose manifest predates `migrationIds`: the set could not be compared. */
    readonly comparedWithManifest: boolean
    /** Ids this build knows that the backup lacks (`pendingOf`, as `/readyz`): the web role applies them at start. */
    readonly pending: ReadonlyArray<number>
  }
  readonly pgRestoreVersion: string
  readonly serverVersion: string
}

/**
 * Restores a backup into a new database and the ambient ObjectStore (a new, empty store), in the runbook's order:
 * verify the backup; refuse while workers/scheduler/gateway are attached; Postgres first (pg_restore, then every
 * table's row count and the set of applied migration ids checked against the manifest); then the object store (each object's sha256 checked, then the
 * store's listing compared with the manifest). Nothing is started: web comes next, alone.
 */
export const restore = (options: RestoreOptions) =>
  Effect.gen(function*() {
    const manifest = yield* Effect.try({ try: () => readManifest(options.dir), catch: (e) => e as PgToolError })
    yield* verifyBackup(options.dir, manifest)
    const database = databaseOf(options.databaseUrl)
    if (database === "" || database === "postgres") {
      return yield* Effect.fail(new PgToolError("the restore target must name a new database (not postgres)"))
    }
    yield* refuseAttached(options.databaseUrl)
    yield* Database.ensureDatabase(withDatabase(options.databaseUrl, "postgres"), database)

    const store = yield* ObjectStore
    const existing = yield* store.list("")
    if (existing.length > 0) {
      return yield* Effect.fail(new PgToolError(`the restore object store is not empty (${existing.length} objects): restore into a new store`))
    }

    const restored = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const present = yield* sql.unsafe<{ n: string | number }>(
        `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'`
      )
      if (Number(present[0]!.n) > 0) {
        return yield* Effect.fail(new PgToolError(`database ${database} already has ${Number(present[0]!.n)} tables: restore into a new database`))
      }
      const server = yield* serverVersion
      const pgRestorePath = yield* Effect.try({ try: () => findProgram("pg_restore", server.major), catch: (e) => e as PgToolError })
      const pgRestore = yield* Effect.try({ try: () => programVersion(pgRestorePath), catch: (e) => e as PgToolError })
      if (pgRestore.major < manifest.postgres.pgDumpMajor) {
        return yield* Effect.fail(new PgToolError(
          `pg_restore ${pgRestore.version} (${pgRestorePath}) cannot read a dump written by pg_dump ${manifest.postgres.pgDumpVersion}: ` +
            `install the PostgreSQL ${manifest.postgres.pgDumpMajor} client or newer and set OPEN_COWORK_PG_BIN_DIR`
        ))
      }
      const connection = connectionFor(options.databaseUrl)
      yield* Effect.tryPromise({
        try: () =>
          run(pgRestorePath, [
            "--dbname", connection.dbname,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            Path.join(options.dir, manifest.postgres.file)
          ], connection.env),
        catch: (e) => e as PgToolError
      })
      const after = yield* countTables
      return { after, migrations: yield* migrationIds, server, pgRestore }
    }).pipe(Effect.provide(sqlLayer(options.databaseUrl, "cowork-restore")))

    const tables: Record<string, { before: number; after: number }> = {}
    const mismatched: Array<string> = []
    for (const name of new Set([...Object.keys(manifest.tables), ...Object.keys(restored.after)])) {
      const before = manifest.tables[name] ?? -1
      const after = restored.after[name] ?? -1
      tables[name] = { before, after }
      if (before !== after) mismatched.push(`${name} ${before} → ${after}`)
    }
    if (mismatched.length > 0) {
      return yield* Effect.fail(new PgToolError(`restored row counts differ from the manifest: ${mismatched.join(", ")}`))
    }
    const recorded = manifest.source.migrationIds
    if (recorded !== undefined) {
      const restoredIds = new Set(restored.migrations)
      const missing = recorded.filter((id) => !restoredIds.has(id))
      const unexpected = restored.migrations.filter((id) => !recorded.includes(id))
      if (missing.length > 0 || unexpected.length > 0) {
        return yield* Effect.fail(new PgToolError(
          `restored migrations differ from the manifest: missing ${missing.join(", ") || "none"}; unexpected ${unexpected.join(", ") || "none"}`
        ))
      }
    }

    // Object store second, only after Postgres is in place (runbook step 4); workers must still be at zero.
    yield* refuseAttached(options.databaseUrl)
    for (const entry of manifest.objectStore.entries) {
      const bytes = Fs.readFileSync(Path.join(options.dir, "object-store", ...entry.key.split("/")))
      if (Crypto.createHash("sha256").update(bytes).digest("hex") !== entry.sha256) {
        return yield* Effect.fail(new PgToolError(`backup object ${entry.key} changed while restoring`))
      }
      yield* store.put(entry.key, new Uint8Array(bytes), { contentType: entry.contentType })
    }
    const listing = yield* store.list("")
    const expected = new Map(manifest.objectStore.entries.map((e) => [e.key, e.size]))
    const wrong = listing.filter((item) => expected.get(item.key) !== item.size).map((item) => item.key)
    const missing = manifest.objectStore.entries.filter((e) => !listing.some((item) => item.key === e.key)).map((e) => e.key)
    if (wrong.length > 0 || missing.length > 0) {
      return yield* Effect.fail(new PgToolError(`restored object store differs from the manifest: missing ${missing.join(", ") || "none"}; unexpected ${wrong.join(", ") || "none"}`))
    }
    return {
      database: describeUrl(options.databaseUrl),
      tables,
      objects: { restored: manifest.objectStore.entries.length, bytes: manifest.objectStore.bytes, verified: true },
      migrations: { applied: restored.migrations.length, comparedWithManifest: recorded !== undefined, pending: pendingOf(restored.migrations) },
      pgRestoreVersion: restored.pgRestore.version,
      serverVersion: restored.server.version
    } satisfies RestoreResult
  })
