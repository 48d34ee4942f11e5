import { Database } from "@cowork/postgres"
import { Effect, Layer } from "effect"

export interface Options {
  /** Start the embedded Postgres when `OPEN_COWORK_DATABASE_URL` is unset (all-in-one and admin). */
  readonly embedded: boolean
  readonly applicationName: string
  readonly maxConnections?: number | undefined
  /**
   * Without `OPEN_COWORK_DATABASE_URL`, use the embedded cluster a running `cowork up` published in
   * `OPEN_COWORK_DATA_DIR` when it answers (default true: `admin`, `migrate`). The serving roles pass false.
   */
  readonly attach?: boolean | undefined
}

/**
 * `PgClient` + `SqlClient` for a process. An embedded cluster lives as long as the layer: the pool closes first,
 * then Postgres stops.
 */
export const clientLayer = (options: Options) =>
  Layer.unwrap(Effect.gen(function*() {
    const url = yield* Database.resolveUrl(options.embedded, { attach: options.attach ?? true })
    // Registered before the pool is built, so it runs after the pool has closed (and before Postgres stops).
    yield* Effect.addFinalizer(() => Effect.logInfo("database pool closed"))
    return Database.layer({ url, applicationName: options.applicationName, maxConnections: options.maxConnections })
  }))

/** `clientLayer` with migrations applied at start (unless `OPEN_COWORK_CLOUD_RUN_MIGRATIONS=false`). */
export const layer = (options: Options) => Database.layerMigrate.pipe(Layer.provideMerge(clientLayer(options)))
