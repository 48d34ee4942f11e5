import { Config, Console, Effect, Option, Redacted } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import { Database } from "@cowork/postgres"
import { DataDir } from "@cowork/services"
import * as Path from "node:path"
import * as BackupRestore from "../ops/BackupRestore.ts"
import * as StoreAt from "../ops/StoreAt.ts"

/** Operator-fixable failures (no pg_dump, version mismatch, non-empty target, attached workers) as one line, exit 1. */
export const asUserError = <A, R>(effect: Effect.Effect<A, unknown, R>) =>
  Effect.mapError(effect, (error) =>
    new CliError.UserError({ cause: error, userMessage: error instanceof Error ? error.message : String(error) }))

const stamp = () => new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

/**
 * `cowork backup [--to DIR]`: `pg_dump --format=custom` of OPEN_COWORK_DATABASE_URL (else the embedded cluster a
 * running `cowork up` published; its Postgres 18 needs a pg_dump 18) plus every object of
 * OPEN_COWORK_OBJECT_STORE_URI, with manifest.json (row counts per table from the dumped snapshot, sha256 of the
 * dump and of every object). Prints the manifest summary as one JSON line.
 */
export const command = Command.make("backup", {
  to: Flag.String("to").pipe(
    Flag.withDescription("Backup directory, new or empty (default: $OPEN_COWORK_BACKUP_DIR/cowork-<timestamp>, else <data dir>/backups/cowork-<timestamp>)"),
    Flag.optional
  )
}, (input) =>
  Effect.gen(function*() {
    const url = yield* Database.resolveUrl(false, { attach: true })
    const root = yield* Config.String("OPEN_COWORK_BACKUP_DIR").pipe(Config.withDefault(""))
    const dataDir = yield* DataDir
    const dir = Path.resolve(Option.getOrElse(input.to, () => Path.join(root === "" ? Path.join(dataDir, "backups") : root, `cowork-${stamp()}`)))
    const uri = yield* Config.String("OPEN_COWORK_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const manifest = yield* BackupRestore.backup({ databaseUrl: Redacted.value(url), dir }).pipe(Effect.provide(StoreAt.layer(uri)))
    yield* Console.log(JSON.stringify({
      backup: dir,
      createdAt: manifest.createdAt,
      source: manifest.source,
      postgres: { file: manifest.postgres.file, bytes: manifest.postgres.bytes, sha256: manifest.postgres.sha256, pgDump: manifest.postgres.pgDumpVersion },
      tables: manifest.tables,
      objectStore: { objects: manifest.objectStore.objects, bytes: manifest.objectStore.bytes, listingSha256: manifest.objectStore.listingSha256 }
    }))
  }).pipe(Effect.scoped, asUserError)).pipe(
  Command.withDescription("Back up Postgres (pg_dump --format=custom) and the object store into a directory with a manifest of row counts and checksums")
)
