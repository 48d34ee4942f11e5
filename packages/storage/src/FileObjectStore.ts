import { type InvalidObjectKey, ObjectNotFound, ObjectStoreUnavailable } from "@cowork/domain"
import {
  type ObjectContent,
  type ObjectListing,
  type ObjectMetadata,
  ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
  unavailable,
  validateObjectKey,
  validateObjectPrefix
} from "@cowork/services"
import type { Metrics } from "@cowork/observability"
import { Effect, type Layer, Option, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import * as InstrumentedObjectStore from "./InstrumentedObjectStore.ts"

/**
 * The embedded default: objects as files under `<root>/data/<key>`, their content type beside them under
 * `<root>/meta/<key>` (only when one was given). A put writes a temp file under `<root>/tmp`, fsyncs it, renames
 * it into place and fsyncs the directory it landed in (and those of any directory the rename had to create), so a
 * reader sees the old object or the new one, never a partial one, and a put that returned survives a crash of the
 * machine. Keys are validated and every resolved path is checked to stay inside the root.
 */

const errorCode = (error: unknown) => (error as { readonly code?: unknown } | undefined)?.code

export const make = (rootDir: string): Effect.Effect<ObjectStore["Service"], ObjectStoreUnavailable> =>
  Effect.gen(function*() {
    const root = Path.resolve(rootDir)
    const dataRoot = Path.join(root, "data")
    const metaRoot = Path.join(root, "meta")
    const tmpRoot = Path.join(root, "tmp")

    const io = <A>(operation: ObjectStoreOperation, key: string | undefined, run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (error) => unavailable(operation, key, error) })

    yield* io("put", undefined, async () => {
      for (const dir of [dataRoot, metaRoot, tmpRoot]) await Fs.mkdir(dir, { recursive: true, mode: 0o700 })
    })

    /** Resolves a validated key under `base`, refusing anything that would land outside it. */
    const pathUnder = (
      base: string,
      key: string,
      operation: ObjectStoreOperation
    ): Effect.Effect<string, ObjectStoreUnavailable> => {
      const path = Path.resolve(base, ...key.split("/"))
      return path.startsWith(base + Path.sep)
        ? Effect.succeed(path)
        : Effect.fail(new ObjectStoreUnavailable({ operation, key, message: "key resolves outside the store root" }))
    }

    const metadataOf = (key: string, size: number, contentType: string | undefined, lastModified?: Date): ObjectMetadata => ({
      key,
      size,
      contentType,
      ...(lastModified === undefined ? {} : { lastModified })
    })

    const readContentType = (key: string) =>
      pathUnder(metaRoot, key, "head").pipe(
        Effect.flatMap((metaPath) =>
          io("head", key, async () => {
            try {
              return JSON.parse(await Fs.readFile(metaPath, "utf8")).contentType as string | undefined
            } catch (error) {
              if (errorCode(error) === "ENOENT") return undefined
              throw error
            }
          })
        )
      )

    /** Makes the entries of `dir` (a rename or a new subdirectory in it) durable. */
    const syncDirectory = async (dir: string) => {
      const handle = await Fs.open(dir, "r")
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    }

    /**
     * Renames `from` to `to`, then makes the rename durable: fsyncs the directory it landed in and, when the parent
     * was missing (a new prefix, or a concurrent delete pruned it) and had to be created, each directory up to the
     * first one that existed. The rename comes first: the directory usually exists, and a put pays no `mkdir`.
     */
    const moveIntoPlace = async (from: string, to: string) => {
      let created: string | undefined
      for (let attempt = 0;; attempt++) {
        try {
          await Fs.rename(from, to)
          break
        } catch (error) {
          if (errorCode(error) !== "ENOENT" || attempt >= 4) throw error
        }
        created = (await Fs.mkdir(Path.dirname(to), { recursive: true, mode: 0o700 })) ?? created
      }
      let dir = Path.dirname(to)
      await syncDirectory(dir)
      while (created !== undefined && dir !== Path.dirname(created) && dir.startsWith(root + Path.sep)) {
        dir = Path.dirname(dir)
        await syncDirectory(dir)
      }
    }

    /** Removes the file at `path`; absent is fine (one `unlink`, not `rm`'s `lstat` + removal). Whether it was there. */
    const removeFile = async (path: string) => {
      try {
        await Fs.unlink(path)
        return true
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error
        return false
      }
    }

    /** Removes empty directories from `dir` up to (not including) `base`; stops at the first non-empty one. */
    const pruneEmptyParents = async (base: string, dir: string) => {
      while (dir.startsWith(base + Path.sep)) {
        try {
          await Fs.rmdir(dir)
        } catch {
          return
        }
        dir = Path.dirname(dir)
      }
    }

    const writeAtomically = <E>(
      key: string,
      target: string,
      content: ObjectContent<E>
    ): Effect.Effect<number, E | ObjectStoreUnavailable> =>
      Effect.acquireUseRelease(
        io("put", key, async () => {
          const tmpPath = Path.join(tmpRoot, `${Crypto.randomUUID()}.part`)
          return { tmpPath, handle: await Fs.open(tmpPath, "wx", 0o600), moved: false }
        }),
        (file) =>
          Effect.gen(function*() {
            let size = 0
            const write = (chunk: Uint8Array) =>
              io("put", key, async () => {
                let offset = 0
                while (offset < chunk.byteLength) {
                  const { bytesWritten } = await file.handle.write(chunk, offset, chunk.byteLength - offset)
                  offset += bytesWritten
                }
                size += chunk.byteLength
              })
            if (content instanceof Uint8Array) yield* write(content)
            else yield* Stream.runForEach(content, write)
            yield* io("put", key, async () => {
              await file.handle.sync()
              await file.handle.close()
              await moveIntoPlace(file.tmpPath, target)
              file.moved = true
            })
            return size
          }),
        (file) =>
          Effect.promise(async () => {
            await file.handle.close().catch(() => undefined)
            if (!file.moved) await Fs.rm(file.tmpPath, { force: true })
          })
      )

    const put = <E>(
      key: string,
      content: ObjectContent<E>,
      options?: PutOptions
    ): Effect.Effect<ObjectMetadata, E | ObjectStoreUnavailable | InvalidObjectKey> =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const dataPath = yield* pathUnder(dataRoot, key, "put")
        const metaPath = yield* pathUnder(metaRoot, key, "put")
        const size = yield* writeAtomically(key, dataPath, content)
        const contentType = options?.contentType
        if (contentType === undefined) yield* io("put", key, () => removeFile(metaPath))
        else yield* writeAtomically<never>(key, metaPath, new TextEncoder().encode(JSON.stringify({ contentType })))
        return metadataOf(key, size, contentType)
      })

    const statObject = (key: string, operation: ObjectStoreOperation) =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const dataPath = yield* pathUnder(dataRoot, key, operation)
        const stat = yield* io(operation, key, async () => {
          try {
            const found = await Fs.stat(dataPath)
            return found.isFile() ? found : undefined
          } catch (error) {
            if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return undefined
            throw error
          }
        })
        return { dataPath, stat }
      })

    const get = (key: string) =>
      Effect.gen(function*() {
        const { dataPath, stat } = yield* statObject(key, "get")
        if (stat === undefined) return yield* new ObjectNotFound({ key })
        const contentType = yield* readContentType(key)
        const body = Stream.unwrap(
          Effect.gen(function*() {
            const handle = yield* Effect.acquireRelease(
              io("get", key, () => Fs.open(dataPath, "r")),
              (handle) => Effect.promise(() => handle.close().catch(() => undefined))
            )
            const opened = yield* io("get", key, () => handle.stat())
            // A put between `get` and reading renamed a new file into place: refuse to mix its bytes with the
            // metadata already returned.
            if (opened.ino !== stat.ino || opened.mtimeMs !== stat.mtimeMs) {
              return yield* new ObjectStoreUnavailable({ operation: "get", key, message: "object replaced while reading" })
            }
            return Stream.fromAsyncIterable(
              handle.createReadStream({ autoClose: false }) as AsyncIterable<Uint8Array>,
              (error) => unavailable("get", key, error)
            )
          })
        )
        return { metadata: metadataOf(key, stat.size, contentType, stat.mtime), body }
      })

    const head = (key: string) =>
      Effect.gen(function*() {
        const { stat } = yield* statObject(key, "head")
        if (stat === undefined) return Option.none()
        return Option.some(metadataOf(key, stat.size, yield* readContentType(key), stat.mtime))
      })

    const remove = (key: string) =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const dataPath = yield* pathUnder(dataRoot, key, "delete")
        const metaPath = yield* pathUnder(metaRoot, key, "delete")
        yield* io("delete", key, async () => {
          await removeFile(dataPath)
          // Most objects have no metadata file: then no metadata directory was emptied either.
          const hadMeta = await removeFile(metaPath)
          await pruneEmptyParents(dataRoot, Path.dirname(dataPath))
          if (hadMeta) await pruneEmptyParents(metaRoot, Path.dirname(metaPath))
        })
      })

    /** The files under `dir` as `[key, path]`, by `readdir` alone. */
    const walk = async (dir: string, keyPrefix: string, into: Array<readonly [string, string]>) => {
      let entries: Array<import("node:fs").Dirent>
      try {
        entries = await Fs.readdir(dir, { withFileTypes: true })
      } catch (error) {
        if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return
        throw error
      }
      for (const entry of entries) {
        const path = Path.join(dir, entry.name)
        if (entry.isDirectory()) await walk(path, `${keyPrefix}${entry.name}/`, into)
        else if (entry.isFile()) into.push([`${keyPrefix}${entry.name}`, path])
      }
    }

    const files = (prefix: string) =>
      Effect.gen(function*() {
        yield* validateObjectPrefix(prefix)
        // Walk only the deepest directory the prefix names in full, then filter by the partial last segment.
        const dirKey = prefix.slice(0, prefix.lastIndexOf("/") + 1)
        const dir = dirKey === "" ? dataRoot : yield* pathUnder(dataRoot, dirKey.slice(0, -1), "list")
        const found: Array<readonly [string, string]> = []
        yield* io("list", prefix, () => walk(dir, dirKey, found))
        return found.filter(([key]) => key.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      })

    const list = (prefix: string) =>
      Effect.flatMap(files(prefix), (found) =>
        io("list", prefix, async () => {
          const listed: Array<ObjectListing> = []
          for (const [key, path] of found) {
            const stat = await Fs.stat(path)
            listed.push({ key, size: stat.size, lastModified: stat.mtime })
          }
          return listed
        }))

    const keys = (prefix: string) => Effect.map(files(prefix), (found) => found.map(([key]) => key))

    return ObjectStore.of({ kind: "file", put, get, head, delete: remove, list, keys })
  })

/** The instrumented file store rooted at `rootDir`. */
export const layer = (rootDir: string): Layer.Layer<ObjectStore, ObjectStoreUnavailable, Metrics> =>
  InstrumentedObjectStore.layer(make(rootDir))
