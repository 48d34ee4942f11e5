import { Config, Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Path from "node:path"
import * as BackupRestore from "../ops/BackupRestore.ts"
import * as StoreAt from "../ops/StoreAt.ts"
import { PgToolError } from "../ops/PgTools.ts"
import { asUserError } from "./Backup.ts"

/**
 * `cowork restore --from DIR [--database-url URL] [--object-store-uri URI]`: into a NEW database
 * (OPEN_COWORK_RESTORE_DATABASE_URL; created when missing, refused when it has tables) and a NEW, empty object store
 * (OPEN_COWORK_RESTORE_OBJECT_STORE_URI), in the runbook's order; refuses while workers, schedulers, gateways or an
 * all-in-one process are connected to the target database. Prints per-table counts before/after as one JSON line.
 */
export const command = Command.make("restore", {
  from: Flag.String("from").pipe(Flag.withDescription("Backup directory written by `cowork backup`")),
  databaseUrl: Flag.String("database-url").pipe(
    Flag.withDescription("Target database URL (default OPEN_COWORK_RESTORE_DATABASE_URL); a new database"),
    Flag.optional
  ),
  objectStoreUri: Flag.String("object-store-uri").pipe(
    Flag.withDescription("Target object store, file:///dir or s3://bucket/prefix (default OPEN_COWORK_RESTORE_OBJECT_STORE_URI); must be empty"),
    Flag.optional
  )
}, (input) =>
  Effect.gen(function*() {
    const envUrl = yield* Config.String("OPEN_COWORK_RESTORE_DATABASE_URL").pipe(Config.withDefault(""))
    const envStore = yield* Config.String("OPEN_COWORK_RESTORE_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const databaseUrl = Option.getOrElse(input.databaseUrl, () => envUrl)
    const storeUri = Option.getOrElse(input.objectStoreUri, () => envStore)
    if (databaseUrl === "") return yield* Effect.fail(new PgToolError("set --database-url or OPEN_COWORK_RESTORE_DATABASE_URL to the new database"))
    if (storeUri === "") return yield* Effect.fail(new PgToolError("set --object-store-uri or OPEN_COWORK_RESTORE_OBJECT_STORE_URI to the new, empty store"))
    const result = yield* BackupRestore.restore({ dir: Path.resolve(input.from), databaseUrl }).pipe(Effect.provide(StoreAt.layer(storeUri)))
    yield* Console.log(JSON.stringify({ restored: result, next: "start the web role alone; workers, scheduler and gateway stay at zero until web checks pass" }))
  }).pipe(asUserError)).pipe(
  Command.withDescription("Restore a `cowork backup` into a new database and a new object store (refused while workers are attached)")
)
