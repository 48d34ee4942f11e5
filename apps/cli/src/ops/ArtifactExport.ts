import type { Artifact } from "@cowork/domain"
import { Artifacts, sha256Stream } from "@cowork/services"
import { Data, Effect, Stream } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { LOCK, withExportLock } from "./ExportLock.ts"

/**
 * An org's artifacts copied out of the object store into a local directory, for a tenant that asked for its data
 * (offboarding) or a retention hand-over. The directory holds:
 *
 *   export.json               {"orgId"}: whose export this is (a rerun into the same directory must name the same org)
 *   manifest.jsonl            one line per exported artifact: id, sessionId, name, contentType, sizeBytes, sha256,
 *                             createdAt, path (relative to the directory)
 *   orphans.jsonl             one line per object under the org's prefix that no artifact row names: key, sizeBytes
 *                             (not exported: without a row nothing says what it is or that its bytes are whole)
 *   files/<session>/<id>      the artifact's bytes, exactly as uploaded
 *   export.lock               while an export runs (ExportLock): a second export into the directory is refused
 *
 * Each object is streamed (never held whole) into `<id>.part`, hashed and counted as it is written, and renamed into
 * place only once its size and sha256 equal the metadata row's; a mismatch or a missing object is reported, never
 * exported. A rerun skips every file already in place whose bytes still match its row (a killed run resumes), and the
 * manifest is written to `manifest.jsonl.part` and renamed at the end: it lists exactly what the last run verified.
 */

/** Artifacts listed per page, and objects copied at once. */
const PAGE = 500
const CONCURRENCY = 4
/** Problems listed in the summary (all are counted). */
const MAX_LISTED_PROBLEMS = 100

const MARKER = "export.json"
const MANIFEST = "manifest.jsonl"
const ORPHANS = "orphans.jsonl"
const FILES = "files"
const PART = ".part"

/** An id used as a path component: what ids are made of (no dot: never `.`, `..`, a hidden name or `x.part`). */
const SAFE_ID = /^[A-Za-z0-9_-]{1,100}$/

/** The directory cannot be used, or writing into it failed: nothing is wrong with the store or the rows. */
export class ExportRefused extends Data.TaggedError("ExportRefused")<{ readonly message: string }> {}

interface ExportProblem {
  readonly id: string
  readonly sessionId: string
  readonly problem: "size_mismatch" | "sha256_mismatch" | "missing_object" | "unsafe_id"
  readonly message: string
}

export interface ExportSummary {
  readonly orgId: string
  readonly since: string | null
  /** Artifacts of the org (created at or after `since`) this run listed. */
  readonly artifacts: number
  /** Copied from the object store by this run. */
  readonly exported: number
  /** Already in the directory from an earlier run, verified again against their rows (not downloaded). */
  readonly alreadyExported: number
  /** Bytes of every artifact in the manifest. */
  readonly bytes: number
  /** Artifacts not exported: a size or sha256 that differs from the row, a missing object. */
  readonly failed: number
  /** The first problems (up to 100). */
  readonly problems: ReadonlyArray<ExportProblem>
  /** Objects under the org's prefix that no artifact row names: not exported, every one listed in `orphans.jsonl`. */
  readonly orphans: number
  /** The first orphans (up to 100). */
  readonly orphanObjects: ReadonlyArray<OrphanObject>
}

interface OrphanObject {
  readonly key: string
  readonly sizeBytes: number
}

export interface ExportOptions {
  readonly orgId: string
  /** Absolute or relative to the working directory; created when absent. */
  readonly dir: string
  /** Only artifacts created at or after this instant. */
  readonly since?: Date | undefined
  /** Artifacts listed per page (default 500). */
  readonly pageSize?: number | undefined
}

const fsError = (what: string) => (cause: unknown) =>
  new ExportRefused({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}` })

const io = <A>(what: string, run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: fsError(what) })

const errorCode = (error: unknown) => (error as { readonly code?: unknown }).code

const readMarker = async (dir: string): Promise<{ readonly orgId?: unknown } | undefined> => {
  try {
    return JSON.parse(await Fs.readFile(Path.join(dir, MARKER), "utf8"))
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined
    return {}
  }
}

/** The files an export writes at its top level (the lock aside: it belongs to the export running). */
const OWN_FILES: ReadonlySet<string> = new Set([MARKER, MANIFEST, ORPHANS])

/**
 * Checks that `dir` (existing, locked by this run) is empty or an export of `orgId` (only the names this module
 * writes, no links), and removes the `.part` files a killed run left (and a stale lock moved aside by a run that died
 * taking it over). Refuses, naming the first foreign entry, anything else.
 */
const prepare = (dir: string, orgId: string) =>
  io(`--to ${dir}`, async () => {
    const refuse = (message: string) => {
      throw new Error(message)
    }
    const leftovers: Array<string> = []
    const top = (await Fs.readdir(dir, { withFileTypes: true })).filter((entry) => {
      if (entry.isFile() && entry.name === LOCK) return false
      const partial = entry.isFile() &&
        ((entry.name.endsWith(PART) && OWN_FILES.has(entry.name.slice(0, -PART.length))) || entry.name.startsWith(`${LOCK}.stale-`))
      if (partial) leftovers.push(Path.join(dir, entry.name))
      return !partial
    })
    if (top.length > 0) {
      const marker = await readMarker(dir)
      if (marker === undefined) refuse(`is not empty and holds no ${MARKER} (refusing to mix an export with other files)`)
      if (marker!.orgId !== orgId) refuse(`holds an export of another org (${MARKER} names ${JSON.stringify(marker!.orgId)}, not ${orgId})`)
    }
    const foreign = (name: string) => refuse(`holds ${name}, which is not part of an artifact export: use an empty directory`)
    for (const entry of top) {
      if (entry.isFile() && OWN_FILES.has(entry.name)) continue
      if (!(entry.isDirectory() && entry.name === FILES)) foreign(entry.name)
    }
    const sessions = top.some((entry) => entry.name === FILES) ? await Fs.opendir(Path.join(dir, FILES)) : []
    for await (const session of sessions) {
      const sessionPath = `${FILES}/${session.name}`
      if (!session.isDirectory() || !SAFE_ID.test(session.name)) foreign(sessionPath)
      for await (const file of await Fs.opendir(Path.join(dir, FILES, session.name))) {
        const id = file.name.endsWith(PART) ? file.name.slice(0, -PART.length) : file.name
        if (!file.isFile() || !SAFE_ID.test(id)) foreign(`${sessionPath}/${file.name}`)
        if (id !== file.name) leftovers.push(Path.join(dir, FILES, session.name, file.name))
      }
    }
    for (const path of leftovers) await Fs.rm(path, { force: true })
  })

const locked = <A, E, R>(dir: string, use: Effect.Effect<A, E, R>) =>
  withExportLock(dir, (why) => new ExportRefused({ message: `--to ${dir}: ${why}` }), use)

/**
 * Checks, holding its lock, that `dir` can take an export of `orgId` (see `prepare`): for a caller that must know the
 * directory is usable before it does anything else (offboarding).
 */
export const prepareDirectory = (dir: string, orgId: string) => locked(dir, prepare(dir, orgId))

/** Writes `content` to `path` through `path.part` (fsync, rename): a reader sees the old file or the new one. */
const writeFileAtomically = (path: string, content: string) =>
  io(`writing ${path}`, async () => {
    const handle = await Fs.open(path + PART, "w", 0o600)
    try {
      await handle.writeFile(content)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await Fs.rename(path + PART, path)
  })

/** Size and sha256 of a local file, streamed. */
const digestFile = (path: string) =>
  io(`reading ${path}`, async () => {
    const hash = sha256Stream()
    let size = 0
    const handle = await Fs.open(path, "r")
    try {
      for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength
        hash.update(chunk)
      }
    } finally {
      await handle.close()
    }
    return { size, sha256: hash.digestHex() }
  })

const exists = (path: string) =>
  io(`reading ${path}`, () => Fs.lstat(path).then((stat) => stat.isFile(), (error) => errorCode(error) === "ENOENT" ? false : Promise.reject(error)))

type Outcome =
  | { readonly _tag: "Exported" | "AlreadyExported"; readonly artifact: Artifact; readonly path: string }
  | { readonly _tag: "Failed"; readonly problem: ExportProblem }

const failed = (artifact: Artifact, problem: ExportProblem["problem"], message: string): Outcome => ({
  _tag: "Failed",
  problem: { id: artifact.id, sessionId: artifact.sessionId, problem, message }
})

const mismatch = (artifact: Artifact, got: { readonly size: number; readonly sha256: string }): Outcome | undefined =>
  got.size !== artifact.sizeBytes
    ? failed(artifact, "size_mismatch", `the object has ${got.size} bytes, the row says ${artifact.sizeBytes}`)
    : got.sha256 !== artifact.sha256
    ? failed(artifact, "sha256_mismatch", `the object's sha256 is ${got.sha256}, the row says ${artifact.sha256}`)
    : undefined

/** Streams the object into `<final>.part`, counting and hashing; renames it into place only if both match the row. */
const copyObject = (artifacts: Artifacts["Service"], orgId: string, artifact: Artifact, final: string) =>
  Effect.gen(function*() {
    const opened = yield* artifacts.open(orgId, artifact.sessionId, artifact.id).pipe(Effect.result)
    if (opened._tag === "Failure") {
      const error = opened.failure
      if (error._tag === "ObjectStoreUnavailable") return yield* error
      return error._tag === "InvalidObjectKey"
        ? failed(artifact, "unsafe_id", `its object key is refused: ${error.reason}`)
        : failed(artifact, "missing_object", error.message)
    }
    const part = final + PART
    yield* io(`writing ${Path.dirname(final)}`, () => Fs.mkdir(Path.dirname(final), { recursive: true, mode: 0o700 }))
    return yield* Effect.acquireUseRelease(
      io(`writing ${part}`, () => Fs.open(part, "w", 0o600)),
      (handle) =>
        Effect.gen(function*() {
          const hash = sha256Stream()
          let size = 0
          let oversized = false
          // Stops reading at the first byte past the row's size: a wrong object never fills the disk.
          yield* opened.success.body.body.pipe(
            Stream.takeWhile((chunk) => {
              size += chunk.byteLength
              oversized = size > artifact.sizeBytes
              return !oversized
            }),
            Stream.runForEach((chunk) =>
              io(`writing ${part}`, async () => {
                hash.update(chunk)
                let offset = 0
                while (offset < chunk.byteLength) {
                  offset += (await handle.write(chunk, offset, chunk.byteLength - offset)).bytesWritten
                }
              })
            )
          )
          const wrong = oversized
            ? failed(artifact, "size_mismatch", `the object has more than the ${artifact.sizeBytes} bytes the row says`)
            : mismatch(artifact, { size, sha256: hash.digestHex() })
          if (wrong !== undefined) return wrong
          yield* io(`writing ${part}`, async () => {
            await handle.sync()
            await handle.close()
            await Fs.rename(part, final)
          })
          return undefined
        }),
      (handle) =>
        Effect.promise(async () => {
          await handle.close().catch(() => undefined)
          await Fs.rm(part, { force: true })
        })
    )
  })

const exportOne = (artifacts: Artifacts["Service"], options: ExportOptions) => (artifact: Artifact) =>
  Effect.gen(function*() {
    if (!SAFE_ID.test(artifact.sessionId) || !SAFE_ID.test(artifact.id)) {
      return failed(artifact, "unsafe_id", "its session or artifact id cannot name a file")
    }
    const path = `${FILES}/${artifact.sessionId}/${artifact.id}`
    const final = Path.join(options.dir, path)
    if (yield* exists(final)) {
      if (mismatch(artifact, yield* digestFile(final)) === undefined) return { _tag: "AlreadyExported", artifact, path } as const
      // Changed on disk since: never left in place, whatever the object turns out to be.
      yield* io(`writing ${final}`, () => Fs.rm(final, { force: true }))
    }
    const wrong = yield* copyObject(artifacts, options.orgId, artifact, final)
    return wrong ?? { _tag: "Exported", artifact, path } as const
  })

/**
 * Exports every artifact of `options.orgId` (created at or after `since`) into `options.dir`. Fails with
 * `ExportRefused` (the directory) or `ObjectStoreUnavailable` (the store; run again to finish); the artifacts whose
 * bytes do not match their rows are in the summary's `problems`, and everything else is exported.
 */
export const exportOrgArtifacts = (options: ExportOptions) =>
  locked(options.dir, exportLocked(options))

const exportLocked = (options: ExportOptions) =>
  Effect.gen(function*() {
    const artifacts = yield* Artifacts
    yield* prepare(options.dir, options.orgId)
    const markerPath = Path.join(options.dir, MARKER)
    if (!(yield* exists(markerPath))) yield* writeFileAtomically(markerPath, `${JSON.stringify({ orgId: options.orgId })}\n`)
    const since = options.since?.getTime()
    const manifestPath = Path.join(options.dir, MANIFEST)
    const counts = { artifacts: 0, exported: 0, alreadyExported: 0, bytes: 0, failed: 0 }
    const problems: Array<ExportProblem> = []
    yield* Effect.acquireUseRelease(
      io(`writing ${manifestPath}${PART}`, () => Fs.open(manifestPath + PART, "w", 0o600)),
      (manifest) =>
        Effect.gen(function*() {
          let cursor: string | undefined
          do {
            const page = yield* artifacts.list(options.orgId, { limit: options.pageSize ?? PAGE, cursor }).pipe(Effect.orDie)
            const wanted = since === undefined ? page.artifacts : page.artifacts.filter((a) => Date.parse(a.createdAt) >= since)
            // Newest first: once a page reaches past `since`, every later page is older still.
            cursor = wanted.length < page.artifacts.length ? undefined : page.nextCursor ?? undefined
            const outcomes = yield* Effect.forEach(wanted, exportOne(artifacts, options), { concurrency: CONCURRENCY })
            let lines = ""
            for (const outcome of outcomes) {
              counts.artifacts++
              if (outcome._tag === "Failed") {
                counts.failed++
                if (problems.length < MAX_LISTED_PROBLEMS) problems.push(outcome.problem)
                continue
              }
              counts[outcome._tag === "Exported" ? "exported" : "alreadyExported"]++
              counts.bytes += outcome.artifact.sizeBytes
              lines += `${JSON.stringify({ ...outcome.artifact, path: outcome.path })}\n`
            }
            if (lines !== "") yield* io(`writing ${manifestPath}${PART}`, () => manifest.appendFile(lines))
          } while (cursor !== undefined)
          yield* io(`writing ${manifestPath}`, async () => {
            await manifest.sync()
            await manifest.close()
            await Fs.rename(manifestPath + PART, manifestPath)
          })
        }),
      // A stopped run leaves no partial manifest (the last complete one, if any, stays).
      (manifest, exit) =>
        Effect.promise(async () => {
          await manifest.close().catch(() => undefined)
          if (exit._tag === "Failure") await Fs.rm(manifestPath + PART, { force: true })
        })
    )
    // Not exported, never skipped silently: listed in full in the directory, the first ones in the summary.
    const orphans = (yield* artifacts.orphanObjects(options.orgId)).map((object): OrphanObject => ({ key: object.key, sizeBytes: object.size }))
    yield* writeFileAtomically(Path.join(options.dir, ORPHANS), orphans.map((orphan) => `${JSON.stringify(orphan)}\n`).join(""))
    const summary: ExportSummary = {
      orgId: options.orgId,
      since: options.since?.toISOString() ?? null,
      ...counts,
      problems,
      orphans: orphans.length,
      orphanObjects: orphans.slice(0, MAX_LISTED_PROBLEMS)
    }
    return summary
  })
