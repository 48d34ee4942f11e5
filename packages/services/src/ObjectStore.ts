import { InvalidObjectKey, ObjectNotFound, ObjectStoreUnavailable } from "@cowork/domain"
import { Clock, Context, Effect, Layer, Option, Stream } from "effect"

export type ObjectStoreKind = "file" | "s3" | "memory"

export type ObjectStoreOperation = ObjectStoreUnavailable["operation"]

export interface ObjectMetadata {
  readonly key: string
  readonly size: number
  readonly contentType: string | undefined
  /** When the object was last written; set by `head` (and `get`) in every adapter. */
  readonly lastModified?: Date | undefined
}

export interface ObjectListing {
  readonly key: string
  readonly size: number
  /** When the object was last written (store clock; the checkpoint prune grace window compares against it). */
  readonly lastModified: Date
}

/** An object's metadata and its bytes as a stream; the bytes are read only when the stream runs. */
export interface ObjectBody {
  readonly metadata: ObjectMetadata
  readonly body: Stream.Stream<Uint8Array, ObjectStoreUnavailable>
}

/** Bytes to store: a buffer, or a stream (its own failures pass through `put` untouched). */
export type ObjectContent<E = never> = Uint8Array | Stream.Stream<Uint8Array, E>

export interface PutOptions {
  readonly contentType?: string | undefined
}

/**
 * Blob storage for artifacts and checkpoints. Keys are `/`-separated relative paths; every adapter refuses a
 * key that could escape its namespace. `put` replaces atomically (a reader sees the old or the new object,
 * never a partial one); `delete` of a missing key succeeds; `list` pages through the whole prefix.
 */
export class ObjectStore extends Context.Service<ObjectStore, {
  readonly kind: ObjectStoreKind
  readonly put: <E = never>(
    key: string,
    content: ObjectContent<E>,
    options?: PutOptions
  ) => Effect.Effect<ObjectMetadata, ObjectStoreUnavailable | InvalidObjectKey | E>
  readonly get: (key: string) => Effect.Effect<ObjectBody, ObjectNotFound | ObjectStoreUnavailable | InvalidObjectKey>
  /** The object's metadata, or none when the key is absent. */
  readonly head: (key: string) => Effect.Effect<Option.Option<ObjectMetadata>, ObjectStoreUnavailable | InvalidObjectKey>
  readonly delete: (key: string) => Effect.Effect<void, ObjectStoreUnavailable | InvalidObjectKey>
  /** Every key under `prefix` (a string prefix, `""` for all), sorted. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<ObjectListing>, ObjectStoreUnavailable | InvalidObjectKey>
  /**
   * The keys `list` would return, without their size and age: where those cost a call per object (the file store's
   * `stat`), a caller that needs them for a few keys only lists the names and `head`s those.
   */
  readonly keys: (prefix: string) => Effect.Effect<ReadonlyArray<string>, ObjectStoreUnavailable | InvalidObjectKey>
}>()("cowork/ObjectStore") {
  static readonly layerMemory = Layer.sync(ObjectStore, () => makeMemoryObjectStore())
}

const MAX_KEY_BYTES = 1024

const keyProblem = (key: string, allowPrefix: boolean): string | undefined => {
  if (key === "") return allowPrefix ? undefined : "empty key"
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`
  if (key.startsWith("/")) return "absolute key"
  if (key.includes("\\")) return "backslash in key"
  if (/[\u0000-\u001f\u007f]/.test(key)) return "control character in key"
  const segments = key.split("/")
  for (const [index, segment] of segments.entries()) {
    if (segment === "." || segment === "..") return "relative path segment"
    const last = index === segments.length - 1
    if (segment === "" && !(allowPrefix && last)) return "empty path segment"
  }
  return undefined
}

/** Refuses keys that could escape a namespace: `..`, `.`, absolute, backslashes, control characters, `//`. */
export const validateObjectKey = (key: string): Effect.Effect<string, InvalidObjectKey> => {
  const reason = keyProblem(key, false)
  return reason === undefined ? Effect.succeed(key) : Effect.fail(new InvalidObjectKey({ key, reason }))
}

/** As `validateObjectKey`, but `""` and a trailing `/` are allowed (a listing prefix). */
export const validateObjectPrefix = (prefix: string): Effect.Effect<string, InvalidObjectKey> => {
  const reason = keyProblem(prefix, true)
  return reason === undefined ? Effect.succeed(prefix) : Effect.fail(new InvalidObjectKey({ key: prefix, reason }))
}

/** Concatenates a stream's chunks (or returns the buffer as is). */
export const collectContent = <E>(content: ObjectContent<E>): Effect.Effect<Uint8Array, E> =>
  content instanceof Uint8Array
    ? Effect.succeed(content)
    : Stream.runCollect(content).pipe(Effect.map((chunks) => concatBytes(chunks)))

const concatBytes = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0)
  const bytes = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

/** Reads a whole object into memory; for small objects (manifests, chunks), not for artifact downloads. */
export const readAll = (body: ObjectBody): Effect.Effect<Uint8Array, ObjectStoreUnavailable> =>
  Stream.runCollect(body.body).pipe(Effect.map(concatBytes))

export const makeMemoryObjectStore = (): ObjectStore["Service"] => {
  type Entry = { readonly bytes: Uint8Array; readonly contentType: string | undefined; readonly lastModified: Date }
  const objects = new Map<string, Entry>()
  const metadataOf = (key: string, entry: Entry): ObjectMetadata => ({
    key,
    size: entry.bytes.byteLength,
    contentType: entry.contentType,
    lastModified: entry.lastModified
  })
  return ObjectStore.of({
    kind: "memory",
    put: <E>(key: string, content: ObjectContent<E>, options?: PutOptions) =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const bytes = yield* collectContent(content)
        const entry: Entry = {
          bytes: bytes.slice(),
          contentType: options?.contentType,
          lastModified: new Date(yield* Clock.currentTimeMillis)
        }
        objects.set(key, entry)
        return metadataOf(key, entry)
      }),
    get: (key) =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const entry = objects.get(key)
        if (entry === undefined) return yield* new ObjectNotFound({ key })
        return { metadata: metadataOf(key, entry), body: Stream.succeed(entry.bytes.slice()) }
      }),
    head: (key) =>
      validateObjectKey(key).pipe(
        Effect.map(() => Option.map(Option.fromNullishOr(objects.get(key)), (entry) => metadataOf(key, entry)))
      ),
    delete: (key) => validateObjectKey(key).pipe(Effect.map(() => void objects.delete(key))),
    list: (prefix) =>
      validateObjectPrefix(prefix).pipe(
        Effect.map(() =>
          [...objects.entries()]
            .filter(([key]) => key.startsWith(prefix))
            .map(([key, entry]) => ({ key, size: entry.bytes.byteLength, lastModified: entry.lastModified }))
            .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        )
      ),
    keys: (prefix) =>
      validateObjectPrefix(prefix).pipe(
        Effect.map(() => [...objects.keys()].filter((key) => key.startsWith(prefix)).sort())
      )
  })
}

/** The error `operation` raised for an unexpected failure, with a message safe to log. */
export const unavailable = (operation: ObjectStoreOperation, key: string | undefined, cause: unknown) =>
  new ObjectStoreUnavailable({
    operation,
    key,
    message: cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
  })
