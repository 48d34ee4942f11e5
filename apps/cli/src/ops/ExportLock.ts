import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * One export at a time per directory: `export.lock` in it, created exclusively (`O_EXCL`) and holding who took it
 * (`{pid, hostname, startedAt}`), removed when the export ends however it ends. Another export into the directory
 * meanwhile is refused, naming the holder.
 *
 * A lock left by a run that died without removing it (killed, the machine restarted) is **stale** when it names this
 * host and a process that no longer exists: it is taken over. One naming another host (a shared directory), or one
 * that cannot be read, is never taken over: the refusal says which file to remove once no export runs.
 */
export const LOCK = "export.lock"

interface Holder {
  readonly pid: number
  readonly hostname: string
  readonly startedAt: string
}

const errorCode = (error: unknown) => (error as { readonly code?: unknown }).code

const parseHolder = (text: string): Holder | undefined => {
  try {
    const value = JSON.parse(text) as Partial<Holder>
    return typeof value.pid === "number" && typeof value.hostname === "string" && typeof value.startedAt === "string"
      ? { pid: value.pid, hostname: value.hostname, startedAt: value.startedAt }
      : undefined
  } catch {
    return undefined
  }
}

/** Whether process `pid` exists on this host (EPERM: it does, another user's). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === "EPERM"
  }
}

const readText = (path: string) =>
  Fs.readFile(path, "utf8").catch((error) => (errorCode(error) === "ENOENT" ? undefined : Promise.reject(error)))

/**
 * Takes the lock of `dir` (which exists): the holder's text once taken; rejects, saying why, when a live export (or a
 * lock that is not judged stale) holds it. A stale lock is moved aside under a name of this process before it is removed,
 * and only if it is still the stale one (two runs taking over the same stale lock: one of them gets it).
 */
const acquire = (dir: string): Promise<string> => {
  const path = Path.join(dir, LOCK)
  const mine = `${JSON.stringify({ pid: process.pid, hostname: Os.hostname(), startedAt: new Date().toISOString() })}\n`
  const refuse = (why: string): never => {
    throw new Error(why)
  }
  const attempt = async (takeOvers: number): Promise<string> => {
    try {
      const handle = await Fs.open(path, "wx", 0o600)
      try {
        await handle.writeFile(mine)
        await handle.sync()
      } finally {
        await handle.close()
      }
      return mine
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error
    }
    const text = await readText(path)
    if (text === undefined) return takeOvers < 3 ? attempt(takeOvers + 1) : refuse(`${LOCK} keeps changing; try again`)
    const holder = parseHolder(text)
    if (holder === undefined) {
      return refuse(`${path} cannot be read as a lock; if no export into this directory runs, remove it and run again`)
    }
    const since = `since ${holder.startedAt}`
    if (holder.hostname !== Os.hostname()) {
      return refuse(`another export holds it (pid ${holder.pid} on ${holder.hostname}, ${since}); if it no longer runs, remove ${path}`)
    }
    if (alive(holder.pid)) return refuse(`another export holds it (pid ${holder.pid}, ${since}); wait for it to finish`)
    if (takeOvers >= 3) return refuse(`${LOCK} keeps changing; try again`)
    const aside = `${path}.stale-${process.pid}`
    try {
      await Fs.rename(path, aside)
    } catch (error) {
      if (errorCode(error) === "ENOENT") return attempt(takeOvers + 1)
      throw error
    }
    if ((await readText(aside)) !== text) {
      // Another run took the stale lock over first: its lock goes back (unless a third has one by now), this run stops.
      await Fs.link(aside, path).catch(() => undefined)
      await Fs.rm(aside, { force: true })
      return refuse("another export took it over just now; wait for it to finish")
    }
    await Fs.rm(aside, { force: true })
    return attempt(takeOvers + 1)
  }
  return attempt(0)
}

/** Removes the lock if it is still this run's. */
const release = (dir: string, mine: string) =>
  Effect.promise(async () => {
    const path = Path.join(dir, LOCK)
    if ((await readText(path).catch(() => undefined)) === mine) await Fs.rm(path, { force: true })
  })

/**
 * Runs `use` holding the export lock of `dir` (created when absent, mode 0700). When another export holds it, or the
 * directory cannot be used, fails with `refused(why)` and `use` does not run.
 */
export const withExportLock = <A, E, R, E2>(dir: string, refused: (why: string) => E2, use: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const stat = await Fs.lstat(dir).catch((error) => (errorCode(error) === "ENOENT" ? undefined : Promise.reject(error)))
        if (stat !== undefined && !stat.isDirectory()) throw new Error("is not a directory")
        await Fs.mkdir(dir, { recursive: true, mode: 0o700 })
        return await acquire(dir)
      },
      catch: (cause) => refused(cause instanceof Error ? cause.message : String(cause))
    }),
    () => use,
    (mine) => release(dir, mine)
  )
