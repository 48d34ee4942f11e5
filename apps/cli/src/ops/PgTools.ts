import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * The PostgreSQL client programs `cowork backup` / `cowork restore` and the drills run (pg_dump, pg_restore, initdb,
 * postgres). The embedded Postgres (18) ships none of them; Debian packages them per major version under
 * `/usr/lib/postgresql/<major>/bin`. Which one is used:
 *
 * 1. `OPEN_COWORK_PG_BIN_DIR`, when set (it must hold the program);
 * 2. `/usr/lib/postgresql/<major>/bin` for the server's major version, when installed;
 * 3. the newest `/usr/lib/postgresql/<n>/bin` installed;
 * 4. the program on `PATH`.
 */

export type PgProgram = "pg_dump" | "pg_restore" | "initdb" | "postgres" | "psql"

export class PgToolError extends Error {
  override readonly name = "PgToolError"
}

const debianRoot = "/usr/lib/postgresql"

const installedMajors = (): ReadonlyArray<number> => {
  try {
    return Fs.readdirSync(debianRoot).map(Number).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => b - a)
  } catch {
    return []
  }
}

const onPath = (program: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(Path.delimiter)) {
    if (dir === "") continue
    const candidate = Path.join(dir, program)
    try {
      Fs.accessSync(candidate, Fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** The path of `program` (see the order above), or a PgToolError saying what to install. */
export const findProgram = (program: PgProgram, preferMajor?: number): string => {
  const configured = process.env.OPEN_COWORK_PG_BIN_DIR
  if (configured !== undefined && configured !== "") {
    const candidate = Path.join(configured, program)
    if (Fs.existsSync(candidate)) return candidate
    throw new PgToolError(`${program} not found in OPEN_COWORK_PG_BIN_DIR (${configured})`)
  }
  const majors = preferMajor === undefined ? installedMajors() : [preferMajor, ...installedMajors()]
  for (const major of majors) {
    const candidate = Path.join(debianRoot, String(major), "bin", program)
    if (Fs.existsSync(candidate)) return candidate
  }
  const found = onPath(program)
  if (found !== undefined) return found
  throw new PgToolError(
    `${program} not found: install the PostgreSQL ${preferMajor ?? ""} client (Debian: apt-get install postgresql-client-${
      preferMajor ?? 15
    }) or set OPEN_COWORK_PG_BIN_DIR to the directory holding it`.replace("  ", " ")
  )
}

/** `pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)` → `{ major: 15, version: "15.14" }`. */
export const programVersion = (path: string): { readonly major: number; readonly version: string } => {
  const out = ChildProcess.execFileSync(path, ["--version"], { encoding: "utf8" })
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(out)
  if (match === null) throw new PgToolError(`cannot read the version of ${path}: ${out.trim()}`)
  return { major: Number(match[1]), version: match[2] === undefined ? match[1]! : `${match[1]}.${match[2]}` }
}

/** `server_version_num` 150014 → 15. */
export const majorOfVersionNum = (versionNum: number) => Math.floor(versionNum / 10_000)

/**
 * pg_dump reads servers of its own major version or older, never newer ones: refuse before running it, with what to
 * do, instead of its own "aborting because of server version mismatch".
 */
export const checkDumpable = (pgDump: { readonly major: number; readonly version: string; readonly path: string }, serverMajor: number) => {
  if (pgDump.major < serverMajor) {
    throw new PgToolError(
      `pg_dump ${pgDump.version} (${pgDump.path}) cannot dump a PostgreSQL ${serverMajor} server: pg_dump reads servers of ` +
        `its own major version or older. Install the PostgreSQL ${serverMajor} client (Debian: postgresql-client-${serverMajor}) ` +
        `and set OPEN_COWORK_PG_BIN_DIR to its bin directory, or back up a server of version <= ${pgDump.major}. ` +
        `(The embedded Postgres of \`cowork up\` is 18; its package ships no pg_dump.)`
    )
  }
}

/**
 * A connection URL split for a child program: the URL without its password (visible in `ps`) and the password in
 * PGPASSWORD.
 */
export const connectionFor = (url: string): { readonly dbname: string; readonly env: Record<string, string> } => {
  const parsed = new URL(url)
  const password = decodeURIComponent(parsed.password)
  parsed.password = ""
  return { dbname: parsed.toString(), env: password === "" ? {} : { PGPASSWORD: password } }
}

/** The URL of another database on the same server. */
export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** The database name in a URL. */
export const databaseOf = (url: string): string => decodeURIComponent(new URL(url).pathname.replace(/^\//, ""))

/** `host:port/database` of a URL: what reports may name (never the user or password). */
export const describeUrl = (url: string): string => {
  const parsed = new URL(url)
  return `${parsed.hostname}:${parsed.port === "" ? "5432" : parsed.port}/${databaseOf(url)}`
}

/** Runs a program to completion; rejects with its stderr tail on a non-zero exit. */
export const run = (path: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ readonly stdout: string; readonly stderr: string }>((resolve, reject) => {
    const child = ChildProcess.spawn(path, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-8_000)))
    child.once("error", (error) => reject(new PgToolError(`${Path.basename(path)} failed to start: ${error.message}`)))
    child.once("exit", (code, signal) => {
      if (code === 0) resolve({ stdout, stderr })
      else reject(new PgToolError(`${Path.basename(path)} exited ${code ?? signal}: ${stderr.trim()}`))
    })
  })
