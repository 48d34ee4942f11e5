import { freePort } from "@cowork/postgres"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { findProgram, PgToolError, programVersion } from "./PgTools.ts"

/**
 * A throwaway PostgreSQL server for the drills, from the distribution's packages (Debian `postgresql-15`: the
 * embedded 18 has no pg_dump, and the Debian client 15 cannot dump 18): `initdb` in a temp dir, `postgres` on a free
 * loopback port, trust auth on 127.0.0.1 only. As root (CI containers), the server runs as the `postgres` user the
 * Debian package creates. It can be stopped and started again on the same port (the failover drill restarts it).
 */
export interface LocalPostgres {
  readonly port: number
  readonly major: number
  readonly version: string
  /** `postgres://cowork@127.0.0.1:<port>/<database>`. */
  readonly url: (database: string) => string
  /** Fast shutdown; resolves once the postmaster has exited. */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port and data directory. */
  readonly start: () => Promise<void>
  readonly running: () => boolean
}

const asPostgresUser = (): { readonly uid?: number; readonly gid?: number } => {
  if (process.getuid?.() !== 0) return {}
  try {
    const id = (flag: string) => Number(ChildProcess.execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim())
    return { uid: id("-u"), gid: id("-g") }
  } catch {
    throw new PgToolError("running as root needs a `postgres` user to run the drill's Postgres (Debian's postgresql-15 package creates it)")
  }
}

export const startLocalPostgres = async (
  dir: string,
  options: { readonly major?: number; readonly durable?: boolean; readonly maxConnections?: number } = {}
): Promise<LocalPostgres> => {
  const initdb = findProgram("initdb", options.major ?? 15)
  const postgres = findProgram("postgres", options.major ?? 15)
  const { major, version } = programVersion(postgres)
  const user = asPostgresUser()
  const dataDir = Path.join(dir, "data")
  Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (user.uid !== undefined) {
    Fs.chownSync(dir, user.uid, user.gid!)
    // The postgres user must be able to reach it (a mkdtemp parent is 0700).
    const parent = Path.dirname(Path.resolve(dir))
    const mode = Fs.statSync(parent).mode & 0o777
    if ((mode & 0o001) === 0) Fs.chmodSync(parent, mode | 0o711)
  }
  if (!Fs.existsSync(Path.join(dataDir, "PG_VERSION"))) {
    await new Promise<void>((resolve, reject) => {
      const child = ChildProcess.spawn(initdb, ["-D", dataDir, "-U", "cowork", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"], {
        ...user,
        stdio: ["ignore", "ignore", "pipe"]
      })
      let stderr = ""
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
      child.once("error", reject)
      child.once("exit", (code) => (code === 0 ? resolve() : reject(new PgToolError(`initdb failed: ${stderr.trim()}`))))
    })
  }
  const port = await freePort()
  let child: ChildProcess.ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const start = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return
    const proc = ChildProcess.spawn(postgres, [
      "-D", dataDir,
      "-p", String(port),
      "-k", dir,
      "-c", "listen_addresses=127.0.0.1",
      "-c", `max_connections=${options.maxConnections ?? 300}`,
      // Drills trade durability for speed; the load harness keeps Postgres's defaults (fsync on).
      ...(options.durable === true ? [] : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
    ], { ...user, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LC_MESSAGES: "C" } })
    child = proc
    exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
    let tail = ""
    await new Promise<void>((resolve, reject) => {
      proc.stderr!.on("data", (chunk: Buffer) => {
        tail = (tail + chunk.toString("utf8")).slice(-4_000)
        if (tail.includes("database system is ready to accept connections")) resolve()
      })
      proc.once("error", reject)
      void exited.then(() => reject(new PgToolError(`postgres exited during start: ${tail.trim()}`)))
    })
  }

  const stop = async () => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGINT")
    const timer = setTimeout(() => child?.kill("SIGQUIT"), 30_000)
    await exited
    clearTimeout(timer)
  }

  // A drill that dies leaves no server behind.
  process.once("exit", () => {
    if (child !== undefined && child.exitCode === null) child.kill("SIGQUIT")
  })
  await start()
  return {
    port,
    major,
    version,
    url: (database) => `postgres://cowork@127.0.0.1:${port}/${database}`,
    stop,
    start,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null
  }
}
