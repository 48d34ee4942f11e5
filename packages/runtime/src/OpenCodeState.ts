import { lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises"
import * as path from "node:path"
import { backup, DatabaseSync } from "node:sqlite"
import { reapStale, type SessionPaths } from "./OpenCodeProcess.ts"

/**
 * A session's exportable opencode state, as named files:
 *
 * - `work/…`                 the workspace (with its `.git`)
 * - `data/opencode/opencode.db`  an online SQLite backup of opencode's database (consistent while it runs; never
 *                            a raw copy of a live WAL database)
 * - `data/opencode/…`        the rest of opencode's data dir (the `snapshot/` repositories, …) except `auth.json`,
 *                            logs and the live database files
 * - `cowork-session.json`    which opencode session is ours
 *
 * Caches, config dirs (rewritten at every start) and symlinks (which could point anywhere on the host) are not
 * exported. Restoring needs the same absolute workspace path, which `sessionPaths` guarantees.
 */

const DB = "opencode.db"
const EXCLUDED_DATA = new Set(["auth.json", "log", "bin", DB, `${DB}-wal`, `${DB}-shm`, `${DB}-journal`])

const walk = async (dir: string, prefix: string, into: Map<string, Uint8Array>, skip?: (name: string) => boolean) => {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  for (const entry of entries) {
    if (skip?.(entry.name) === true) continue
    const full = path.join(dir, entry.name)
    const key = `${prefix}/${entry.name}`
    if (entry.isDirectory()) await walk(full, key, into)
    else if (entry.isFile()) into.set(key, new Uint8Array(await readFile(full)))
  }
}

const openCodeData = (paths: SessionPaths) => path.join(paths.data, "opencode")

export const exportState = async (paths: SessionPaths): Promise<Map<string, Uint8Array>> => {
  const files = new Map<string, Uint8Array>()
  await walk(paths.work, "work", files)
  const data = openCodeData(paths)
  await walk(data, "data/opencode", files, (name) => EXCLUDED_DATA.has(name))
  const live = path.join(data, DB)
  if ((await lstat(live).catch(() => undefined))?.isFile() === true) {
    const copy = path.join(paths.tmp, `export-${process.pid}-${Date.now()}.db`)
    await mkdir(paths.tmp, { recursive: true })
    const source = new DatabaseSync(live, { readOnly: true })
    try {
      await backup(source, copy)
    } finally {
      source.close()
    }
    try {
      files.set(`data/opencode/${DB}`, new Uint8Array(await readFile(copy)))
    } finally {
      await rm(copy, { force: true })
    }
  }
  const record = await readFile(paths.record).catch(() => undefined)
  if (record !== undefined) files.set("cowork-session.json", new Uint8Array(record))
  return files
}

/** Where a state file goes, or undefined for a name outside the exported set (never written). */
const targetOf = (paths: SessionPaths, name: string): string | undefined => {
  const parts = name.split("/")
  if (parts.some((part) => part === "" || part === "." || part === "..")) return undefined
  if (name === "cowork-session.json") return paths.record
  if (parts[0] === "work") return path.join(paths.work, ...parts.slice(1))
  if (parts[0] === "data" && parts[1] === "opencode" && parts.length > 2 && parts[2] !== "auth.json") {
    return path.join(openCodeData(paths), ...parts.slice(2))
  }
  return undefined
}

/** Replaces the session's workspace and opencode data with the state (opencode must not be running). */
export const importState = async (paths: SessionPaths, files: ReadonlyMap<string, Uint8Array>): Promise<void> => {
  // An opencode a dead worker left on this directory must not write into the restored state.
  await reapStale(paths)
  await rm(paths.work, { recursive: true, force: true })
  await rm(openCodeData(paths), { recursive: true, force: true })
  await rm(paths.record, { force: true })
  await mkdir(paths.work, { recursive: true })
  for (const [name, bytes] of files) {
    const target = targetOf(paths, name)
    if (target === undefined) continue
    await mkdir(path.dirname(target), { recursive: true })
    await writeFile(target, bytes)
  }
}
