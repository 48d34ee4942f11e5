import {
  CheckpointCorrupt,
  InvalidObjectKey,
  type ObjectNotFound,
  type ObjectStoreUnavailable,
  type SecretAdapterUnavailable,
  type SecretRevealFailed
} from "@cowork/domain"
import { ObjectStore, readAll, type RuntimeState, SecretAdapter, sha256Hex } from "@cowork/services"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"

/**
 * Runtime state checkpoints in the object store, content-addressed and encrypted with the org's data key:
 *
 *   checkpoints/<orgId>/<sessionId>/chunks/<sha256 of the plaintext file>   one per distinct file content
 *   checkpoints/<orgId>/<sessionId>/manifests/<version>.json                path → chunk hash + size, and the
 *                                                                           small new contents themselves
 *
 * A save writes one object in the common case: file contents that are not already stored as a chunk are inlined
 * in the manifest, smallest first, up to `inlineMaxBytes` (64 KiB) in all; only the rest become chunk objects.
 * Chunks are written before their manifest, so a manifest never names a missing chunk; a chunk already present
 * is not uploaded again. Each envelope is bound to its object key, so chunks cannot be swapped or replayed
 * under another name, and a chunk or inlined content is checked against its hash when restored. A save given the
 * version it replaces (`previous`) writes nothing when the state is the one that version's manifest (known to this
 * process) describes.
 *
 * Prune is safe beside a concurrent save by another owner (a stale owner that acked, lost its lease and prunes
 * while the new owner is mid-save): it deletes a chunk only when no manifest present names it AND the object is
 * older than the grace window (`chunkGraceMs`, default 15 minutes, by the object's `lastModified`). A chunk the
 * new owner just uploaded for a manifest that has not landed yet is therefore never deleted. The one chunk a
 * save does not upload is one already present (reused); `save` heads those again after its manifest is written
 * and re-uploads any a concurrent prune removed, so the window left is a prune that read the manifests before
 * the new one landed and deletes the reused chunk after that re-check.
 */

const Manifest = Schema.Struct({
  /** 1: every content is a chunk object; 2: some may be inlined (`inline`). Both restore. */
  format: Schema.Literals([1, 2]),
  orgId: Schema.String,
  sessionId: Schema.String,
  version: Schema.Number,
  files: Schema.Array(Schema.Struct({ path: Schema.String, chunk: Schema.String, size: Schema.Number })),
  /** Contents stored in the manifest itself (base64), by chunk hash: these have no chunk object. */
  inline: Schema.optionalKey(Schema.Array(Schema.Struct({ chunk: Schema.String, data: Schema.String })))
})
type Manifest = typeof Manifest.Type

/** What a save, a prune and the unchanged check need of a manifest (no inlined bytes: the cache stays small). */
interface ManifestIndex {
  readonly files: Manifest["files"]
  /** Hashes of the contents inlined in the manifest (not chunk objects). */
  readonly inline: ReadonlySet<string>
}

const indexOf = (manifest: Manifest): ManifestIndex => ({
  files: manifest.files,
  inline: new Set((manifest.inline ?? []).map((entry) => entry.chunk))
})

const ManifestJson = Schema.fromJsonString(Manifest)

export interface CheckpointSaved {
  /** The version saved, or `previous` when nothing was written (`written` false). */
  readonly version: number
  /** False when the state is the one `previous` already holds: no object was written. */
  readonly written: boolean
  /** Plaintext bytes of the chunks this save uploaded (the manifest is not counted). */
  readonly uploadedBytes: number
  readonly uploadedChunks: number
  /** Distinct file contents already in the store from an earlier save. */
  readonly reusedChunks: number
  /** Distinct file contents written inside the manifest instead of as chunk objects. */
  readonly inlinedChunks: number
}

export interface CheckpointPruned {
  readonly keptVersions: ReadonlyArray<number>
  readonly deletedManifests: number
  readonly deletedChunks: number
}

type StoreError = ObjectStoreUnavailable | InvalidObjectKey
type LoadError = StoreError | ObjectNotFound | CheckpointCorrupt | SecretRevealFailed | SecretAdapterUnavailable

export interface CheckpointStoreOptions {
  /** A chunk written less than this long ago is never pruned (default 15 minutes; 0 turns the check off). */
  readonly chunkGraceMs?: number | undefined
  /** Plaintext bytes a manifest may inline in all (default 64 KiB; 0: every content is a chunk object). */
  readonly inlineMaxBytes?: number | undefined
}

export const DEFAULT_CHUNK_GRACE_MS = 15 * 60 * 1000
export const DEFAULT_INLINE_MAX_BYTES = 64 * 1024

export class CheckpointStore extends Context.Service<CheckpointStore, {
  /**
   * Saves `state` as `version`. With `previous` (the version the state replaces; 0 = the empty state): when the state
   * is exactly what that version holds, as far as this process knows its manifest, nothing is written and the result
   * names `previous`; contents that manifest stores as chunks are reused without asking the store first.
   */
  readonly save: (
    orgId: string,
    sessionId: string,
    version: number,
    state: RuntimeState,
    previous?: number | undefined
  ) => Effect.Effect<CheckpointSaved, StoreError | SecretAdapterUnavailable>
  /** Fails with ObjectNotFound when there is no manifest for this version. */
  readonly load: (orgId: string, sessionId: string, version: number) => Effect.Effect<RuntimeState, LoadError>
  /** Saved versions, ascending. */
  readonly versions: (orgId: string, sessionId: string) => Effect.Effect<ReadonlyArray<number>, StoreError>
  /**
   * Deletes all but the newest `keepLast` manifests (at least one is always kept), then every chunk that no
   * manifest still present names and that is older than the grace window.
   */
  readonly prune: (orgId: string, sessionId: string, keepLast: number) => Effect.Effect<CheckpointPruned, LoadError>
}>()("cowork/CheckpointStore") {
  static readonly layer: Layer.Layer<CheckpointStore, never, ObjectStore | SecretAdapter> = Layer.effect(
    CheckpointStore,
    Effect.gen(function*() {
      return make(yield* ObjectStore, yield* SecretAdapter)
    })
  )

  static readonly layerWith = (options: CheckpointStoreOptions): Layer.Layer<CheckpointStore, never, ObjectStore | SecretAdapter> =>
    Layer.effect(
      CheckpointStore,
      Effect.gen(function*() {
        return make(yield* ObjectStore, yield* SecretAdapter, options)
      })
    )
}

const SAFE_ID = /^[A-Za-z0-9_.-]+$/
const CONCURRENCY = 4
/** Manifests this process wrote or read, by key: a version's manifest never changes once written. */
const MANIFEST_CACHE_SIZE = 4_096
/** Chunks remembered as too young to prune (see `youngOrphans`). */
const YOUNG_ORPHANS_SIZE = 65_536

const sha256 = sha256Hex

export const make = (
  store: ObjectStore["Service"],
  secrets: SecretAdapter["Service"],
  options: CheckpointStoreOptions = {}
): CheckpointStore["Service"] => {
  const graceMs = Math.max(0, options.chunkGraceMs ?? DEFAULT_CHUNK_GRACE_MS)
  const inlineMaxBytes = Math.max(0, options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES)
  // A manifest key names one content for good (versions are unique per lease owner and never reused, a retried save
  // writes the same state again), so a prune re-reading the kept manifests (every few saves, each a get + decrypt +
  // decode) takes the ones this process wrote or read from here, and a save compares its state with the manifest of
  // the version it replaces. Presence is still listed from the store on every prune (only contents are cached), and
  // `load` always reads and verifies the stored manifest. Without the inlined bytes: an entry is a file list.
  const manifestCache = new Map<string, ManifestIndex>()
  const remember = (key: string, manifest: ManifestIndex) => {
    manifestCache.delete(key)
    manifestCache.set(key, manifest)
    if (manifestCache.size > MANIFEST_CACHE_SIZE) manifestCache.delete(manifestCache.keys().next().value!)
  }
  const sessionRoot = (orgId: string, sessionId: string): Effect.Effect<string, InvalidObjectKey> => {
    for (const id of [orgId, sessionId]) {
      if (!SAFE_ID.test(id) || id === "." || id === "..") {
        return Effect.fail(new InvalidObjectKey({ key: id, reason: "org and session ids must be [A-Za-z0-9_.-]+" }))
      }
    }
    return Effect.succeed(`checkpoints/${orgId}/${sessionId}`)
  }
  const chunkKey = (root: string, hash: string) => `${root}/chunks/${hash}`
  const manifestKey = (root: string, version: number) => `${root}/manifests/${version}.json`

  const checkVersion = (version: number) =>
    Number.isSafeInteger(version) && version >= 0
      ? Effect.void
      : Effect.die(new Error(`checkpoint version must be a non-negative integer, got ${version}`))

  /** The manifest of `previous` as this process knows it (version 0: the empty state), else undefined. */
  const knownManifest = (root: string, previous: number | undefined): ManifestIndex | undefined =>
    previous === undefined
      ? undefined
      : previous === 0
      ? { files: [], inline: new Set() }
      : manifestCache.get(manifestKey(root, previous))

  const sameFiles = (a: Manifest["files"], b: Manifest["files"]) =>
    a.length === b.length &&
    a.every((file, index) => file.path === b[index]!.path && file.chunk === b[index]!.chunk && file.size === b[index]!.size)

  const save = Effect.fnUntraced(function*(
    orgId: string,
    sessionId: string,
    version: number,
    state: RuntimeState,
    previous?: number | undefined
  ) {
    yield* checkVersion(version)
    const root = yield* sessionRoot(orgId, sessionId)
    const files = [...state.files.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([path, bytes]) => ({ path, bytes, chunk: sha256(bytes) }))
    const listed = files.map(({ path, chunk, bytes }) => ({ path, chunk, size: bytes.byteLength }))
    const before = knownManifest(root, previous)
    if (before !== undefined && previous !== undefined && sameFiles(before.files, listed)) {
      return { version: previous, written: false, uploadedBytes: 0, uploadedChunks: 0, reusedChunks: 0, inlinedChunks: 0 }
    }
    const distinct = new Map(files.map((file) => [file.chunk, file.bytes]))

    // Contents the replaced version stores as chunk objects are reused as they are (checked again below, after the
    // manifest landed); of the others, the smallest are inlined in the manifest while they fit, the rest uploaded.
    const stored = new Set(before?.files.filter((file) => !before.inline.has(file.chunk)).map((file) => file.chunk))
    const inline = new Map<string, Uint8Array>()
    let inlineBytes = 0
    for (const [hash, bytes] of [...distinct].filter(([hash]) => !stored.has(hash)).sort(([, a], [, b]) => a.byteLength - b.byteLength)) {
      if (inlineBytes + bytes.byteLength > inlineMaxBytes) break
      inline.set(hash, bytes)
      inlineBytes += bytes.byteLength
    }
    const chunked = [...distinct].filter(([hash]) => !inline.has(hash))

    const uploads = yield* Effect.forEach(
      chunked,
      ([hash, bytes]) =>
        Effect.gen(function*() {
          if (stored.has(hash)) return 0
          const key = chunkKey(root, hash)
          const existing = yield* store.head(key)
          if (existing._tag === "Some") return 0
          yield* store.put(key, yield* secrets.encrypt(orgId, bytes, key))
          return bytes.byteLength
        }),
      { concurrency: CONCURRENCY }
    )

    const manifest: Manifest = {
      format: inline.size > 0 ? 2 : 1,
      orgId,
      sessionId,
      version,
      files: listed,
      ...(inline.size > 0
        ? { inline: [...inline].map(([chunk, bytes]) => ({ chunk, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") })) }
        : {})
    }
    const key = manifestKey(root, version)
    const plaintext = new TextEncoder().encode(Schema.encodeSync(ManifestJson)(manifest))
    // No content type: like the chunks, an opaque envelope (the file store would write and fsync a metadata file for it).
    yield* store.put(key, yield* secrets.encrypt(orgId, plaintext, key))
    remember(key, { files: listed, inline: new Set(inline.keys()) })

    // A prune by another owner may have removed a reused (older) chunk before this manifest landed: put it back.
    const reused = chunked.filter((_, index) => uploads[index] === 0)
    yield* Effect.forEach(
      reused,
      ([hash, bytes]) =>
        Effect.gen(function*() {
          const key = chunkKey(root, hash)
          if (Option.isSome(yield* store.head(key))) return
          yield* store.put(key, yield* secrets.encrypt(orgId, bytes, key))
        }),
      { concurrency: CONCURRENCY, discard: true }
    )

    const uploaded = uploads.filter((bytes) => bytes > 0)
    return {
      version,
      written: true,
      uploadedBytes: uploaded.reduce((sum, bytes) => sum + bytes, 0),
      uploadedChunks: uploaded.length,
      reusedChunks: uploads.length - uploaded.length,
      inlinedChunks: inline.size
    }
  }, Effect.withSpan("CheckpointStore.save"))

  const readManifest = (orgId: string, sessionId: string, root: string, version: number) =>
    Effect.gen(function*() {
      const key = manifestKey(root, version)
      const sealed = yield* readAll(yield* store.get(key))
      const plaintext = yield* secrets.decrypt(orgId, sealed, key)
      const manifest = yield* Schema.decodeUnknownEffect(ManifestJson)(new TextDecoder().decode(plaintext)).pipe(
        Effect.mapError(() => new CheckpointCorrupt({ key, message: "manifest does not decode" }))
      )
      if (manifest.orgId !== orgId || manifest.sessionId !== sessionId || manifest.version !== version) {
        return yield* new CheckpointCorrupt({ key, message: "manifest names another checkpoint" })
      }
      remember(key, indexOf(manifest))
      return manifest
    })

  const load = Effect.fn("CheckpointStore.load")(function*(orgId: string, sessionId: string, version: number) {
    yield* checkVersion(version)
    const root = yield* sessionRoot(orgId, sessionId)
    const manifest = yield* readManifest(orgId, sessionId, root, version)
    const chunks = new Map<string, Uint8Array>()
    for (const entry of manifest.inline ?? []) {
      const bytes = new Uint8Array(Buffer.from(entry.data, "base64"))
      if (sha256(bytes) !== entry.chunk) {
        return yield* new CheckpointCorrupt({ key: manifestKey(root, version), message: "inlined content does not match its hash" })
      }
      chunks.set(entry.chunk, bytes)
    }
    yield* Effect.forEach(
      new Set(manifest.files.map((file) => file.chunk).filter((hash) => !chunks.has(hash))),
      (hash) =>
        Effect.gen(function*() {
          const key = chunkKey(root, hash)
          const sealed = yield* readAll(yield* store.get(key))
          const bytes = yield* secrets.decrypt(orgId, sealed, key)
          if (sha256(bytes) !== hash) return yield* new CheckpointCorrupt({ key, message: "chunk does not match its hash" })
          chunks.set(hash, bytes)
        }),
      { concurrency: CONCURRENCY, discard: true }
    )
    const files = new Map<string, Uint8Array>()
    for (const file of manifest.files) {
      const bytes = chunks.get(file.chunk)!
      if (bytes.byteLength !== file.size) {
        return yield* new CheckpointCorrupt({ key: chunkKey(root, file.chunk), message: "chunk size differs from the manifest" })
      }
      files.set(file.path, bytes)
    }
    return { files } satisfies RuntimeState
  })

  // Names only (no size or age): the file store answers with one `readdir`, not a `stat` per manifest.
  const listVersions = (root: string) =>
    Effect.map(store.keys(`${root}/manifests/`), (keys) =>
      keys
        .map((key) => /\/manifests\/(\d+)\.json$/.exec(key)?.[1])
        .filter((digits): digits is string => digits !== undefined)
        .map(Number)
        .sort((a, b) => a - b))

  const versions = Effect.fn("CheckpointStore.versions")(function*(orgId: string, sessionId: string) {
    return yield* listVersions(yield* sessionRoot(orgId, sessionId))
  })

  // Unnamed chunks this process found inside the grace window, with the time they leave it: later prunes skip their
  // `head` until then. Safe to skip: an object's age only ever restarts (a re-upload makes it younger), never grows
  // past what was seen, so the chunk cannot be old enough before that time. Bounded; a forgotten entry costs a head.
  const youngOrphans = new Map<string, number>()
  const oldEnough = (key: string, now: number) =>
    Effect.gen(function*() {
      const notBefore = youngOrphans.get(key)
      if (notBefore !== undefined && now < notBefore) return Option.none<string>()
      const found = yield* store.head(key)
      if (Option.isNone(found)) {
        youngOrphans.delete(key)
        return Option.none<string>()
      }
      // No age from the store (a non-conforming one): as if just written, never pruned early.
      const written = found.value.lastModified?.getTime() ?? now
      if (now - written >= graceMs) return Option.some(key)
      youngOrphans.delete(key)
      youngOrphans.set(key, written + graceMs)
      if (youngOrphans.size > YOUNG_ORPHANS_SIZE) youngOrphans.delete(youngOrphans.keys().next().value!)
      return Option.none<string>()
    })

  const prune = Effect.fnUntraced(function*(orgId: string, sessionId: string, keepLast: number) {
    const root = yield* sessionRoot(orgId, sessionId)
    // Chunks are listed before the manifests are read, so a chunk written after this listing is not a candidate at
    // all, and one written before it is either old enough or inside the grace window. Names only: the age is looked
    // up (below) for the chunks no manifest names, not for every chunk (the file store's `stat` per file).
    const chunks = yield* store.keys(`${root}/chunks/`)
    const now = yield* Clock.currentTimeMillis
    const all = yield* listVersions(root)
    const keep = Math.max(1, Math.floor(keepLast))
    const kept = all.slice(-keep)
    const dropped = all.slice(0, Math.max(0, all.length - keep))
    yield* Effect.forEach(dropped, (version) =>
      Effect.andThen(store.delete(manifestKey(root, version)), Effect.sync(() => manifestCache.delete(manifestKey(root, version)))), {
      concurrency: CONCURRENCY,
      discard: true
    })
    // Every manifest present now (kept ones, plus any another owner wrote since the first listing) protects its
    // chunks. A kept manifest that cannot be read fails the prune here, before any chunk is deleted.
    const present = [...new Set([...kept, ...(yield* listVersions(root))])].filter((version) => !dropped.includes(version))
    const manifests = yield* Effect.forEach(
      present,
      (version) =>
        Effect.suspend(() => {
          const cached = manifestCache.get(manifestKey(root, version))
          return cached === undefined ? Effect.map(readManifest(orgId, sessionId, root, version), indexOf) : Effect.succeed(cached)
        }).pipe(
          // A manifest that appeared after the first listing may already be pruned by its own owner: skip it.
          Effect.map(Option.some),
          Effect.catchTag("ObjectNotFound", (error) => kept.includes(version) ? Effect.fail(error) : Effect.succeedNone)
        ),
      { concurrency: CONCURRENCY }
    )
    // Inlined contents live in their manifest: they protect no chunk object.
    const referenced = new Set(
      manifests.flatMap((manifest) =>
        Option.isSome(manifest)
          ? manifest.value.files.filter((file) => !manifest.value.inline.has(file.chunk)).map((file) => chunkKey(root, file.chunk))
          : []
      )
    )
    const aged = yield* Effect.forEach(
      chunks.filter((key) => !referenced.has(key)),
      (key) => graceMs === 0 ? Effect.succeed(Option.some(key)) : oldEnough(key, now),
      { concurrency: CONCURRENCY }
    )
    const orphans = aged.flatMap((key) => Option.isSome(key) ? [key.value] : [])
    yield* Effect.forEach(orphans, (key) => Effect.andThen(store.delete(key), Effect.sync(() => youngOrphans.delete(key))), {
      concurrency: CONCURRENCY,
      discard: true
    })
    return { keptVersions: kept, deletedManifests: dropped.length, deletedChunks: orphans.length }
  }, Effect.withSpan("CheckpointStore.prune"))

  return CheckpointStore.of({ save, load, versions, prune })
}
