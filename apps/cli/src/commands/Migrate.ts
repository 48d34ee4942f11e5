import { runMigrations } from "@cowork/postgres"
import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import * as ControlPlaneDatabase from "../ControlPlaneDatabase.ts"

/**
 * `cowork migrate`: applies pending migrations and prints what it applied — to `OPEN_COWORK_DATABASE_URL`, else to the
 * embedded cluster (the one a running `cowork up` published, or started here for the duration of the command).
 */
export const command = Command.make("migrate", {}, () =>
  Effect.gen(function*() {
    const applied = yield* runMigrations
    yield* Console.log(applied.length === 0 ? "migrations: up to date" : `migrations applied: ${applied.join(", ")}`)
  }).pipe(
    Effect.provide(ControlPlaneDatabase.clientLayer({ embedded: true, applicationName: "cowork-migrate", maxConnections: 2 }))
  )).pipe(Command.withDescription("Apply pending database migrations (OPEN_COWORK_DATABASE_URL, else the embedded cluster) and print them"))
