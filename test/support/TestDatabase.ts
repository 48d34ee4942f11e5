import { Database, runMigrations } from "@cowork/postgres"
import { Effect, Layer, Redacted } from "effect"
import { inject } from "vitest"

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Creates a fresh, empty database on the run's cluster and returns its URL. */
export const freshDatabaseUrl = Effect.gen(function*() {
  const admin = inject("adminDatabaseUrl")
  const name = `t_${globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`
  yield* Database.ensureDatabase(admin, name)
  return withDatabase(admin, name)
})

/** A migrated fresh database per test file: `PgClient` + `SqlClient`. */
export const layer = (options: { readonly maxConnections?: number } = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const client = Database.layer({ url: Redacted.make(url), maxConnections: options.maxConnections ?? 20 })
    return Layer.effectDiscard(runMigrations).pipe(Layer.provideMerge(client))
  }))
