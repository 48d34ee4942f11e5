import { ObjectStoreUnavailable } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ObjectStore, readAll, type RuntimeState, SecretAdapter } from "@cowork/services"
import {
  CheckpointStore,
  type CheckpointStoreOptions,
  DEFAULT_CHUNK_GRACE_MS,
  DEFAULT_INLINE_MAX_BYTES,
  FaultyObjectStore,
  FileObjectStore,
  make as makeCheckpointStore
} from "@cowork/storage"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { failureOf } from "./support/ObjectStoreContract.ts"

const encode = (text: string) => new TextEncoder().encode(text)
const state = (files: Record<string, string | Uint8Array>): RuntimeState => ({
  files: new Map(Object.entries(files).map(([path, content]) => [path, typeof content === "string" ? encode(content) : content]))
})
const asText = (restored: RuntimeState) =>
  Object.fromEntries([...restored.files].map(([path, bytes]) => [path, new TextDecoder().decode(bytes)]))

/** CheckpointStore over a fault-injecting wrapper of `store`, with in-memory keys. */
const checkpointLayer = (store: Layer.Layer<ObjectStore>, options: CheckpointStoreOptions = {}) =>
  CheckpointStore.layerWith(options).pipe(
    Layer.provideMerge(Layer.merge(FaultyObjectStore.layer.pipe(Layer.provide(store)), SecretAdapter.layerMemory))
  )

const stores: ReadonlyArray<[string, () => Layer.Layer<ObjectStore>]> = [
  ["memory", () => ObjectStore.layerMemory],
  ["file", () =>
    FileObjectStore.layer(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-checkpoints-"))).pipe(
      Layer.provide(Metrics.layerTest("worker")),
      Layer.orDie
    )]
]

const transcript = new Uint8Array(64 * 1024).map((_, index) => index % 256)
/** Every content a chunk object (format 1), as before manifests inlined small contents. */
const chunksOnly: CheckpointStoreOptions = { inlineMaxBytes: 0 }

for (const [name, store] of stores) {
  describe(`CheckpointStore over the ${name} store`, () => {
    it.effect("a second save with one changed file uploads only that file's bytes; both versions restore", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const objects = yield* ObjectStore
        const first = state({
          "workspace/transcript.md": transcript,
          "workspace/notes.txt": "first notes",
          "xdg/config/opencode.json": "{}",
          "xdg/config/copy.json": "{}"
        })
        const saved1 = yield* checkpoints.save("org_1", "ses_1", 1, first)
        assert.deepStrictEqual(saved1, {
          version: 1,
          written: true,
          uploadedBytes: transcript.byteLength + 11 + 2,
          uploadedChunks: 3,
          reusedChunks: 0,
          inlinedChunks: 0
        })

        const second = state({ ...asText(first), "workspace/transcript.md": transcript, "workspace/notes.txt": "second notes!" })
        const saved2 = yield* checkpoints.save("org_1", "ses_1", 2, second)
        assert.deepStrictEqual(saved2, { version: 2, written: true, uploadedBytes: 13, uploadedChunks: 1, reusedChunks: 2, inlinedChunks: 0 })

        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_1", 1)), asText(first))
        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_1", 2)), asText(second))
        assert.deepStrictEqual(yield* checkpoints.versions("org_1", "ses_1"), [1, 2])

        const notesHash = Crypto.createHash("sha256").update("second notes!").digest("hex")
        const chunk = yield* readAll(yield* objects.get(`checkpoints/org_1/ses_1/chunks/${notesHash}`))
        assert.notInclude(Buffer.from(chunk).toString("latin1"), "second notes")
        const manifest = yield* readAll(yield* objects.get("checkpoints/org_1/ses_1/manifests/2.json"))
        assert.notInclude(Buffer.from(manifest).toString("latin1"), "workspace/notes.txt")
      }).pipe(Effect.provide(checkpointLayer(store(), chunksOnly))))

    it.effect("small new contents are inlined in the manifest (one object per save); large ones stay chunks; both restore and prune", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const objects = yield* ObjectStore
        const secrets = yield* SecretAdapter
        const count = (kind: string) => Effect.map(objects.keys(`checkpoints/org_1/ses_i/${kind}/`), (keys) => keys.length)
        const big = new Uint8Array(DEFAULT_INLINE_MAX_BYTES).map((_, index) => (index * 7) % 256)
        const first = state({ "workspace/transcript.md": "turn 1", "workspace/notes.txt": "notes", "copy.txt": "notes", "big.bin": big })
        // The two small contents fit; the 64 KiB one does not fit beside them and becomes a chunk.
        assert.deepStrictEqual(yield* checkpoints.save("org_1", "ses_i", 1, first, 0), {
          version: 1,
          written: true,
          uploadedBytes: big.byteLength,
          uploadedChunks: 1,
          reusedChunks: 0,
          inlinedChunks: 2
        })
        assert.deepStrictEqual([yield* count("chunks"), yield* count("manifests")], [1, 1])
        const sealed = Buffer.from(yield* readAll(yield* objects.get("checkpoints/org_1/ses_i/manifests/1.json"))).toString("latin1")
        assert.notInclude(sealed, "notes", "inlined contents are encrypted with the manifest")
        assert.notInclude(sealed, Buffer.from("notes").toString("base64"))

        // The next turn changes the transcript: one object (the manifest); the chunk the last manifest names is reused.
        const second = state({ ...asText(first), "workspace/transcript.md": "turn 1\nturn 2", "big.bin": big })
        assert.deepStrictEqual(yield* checkpoints.save("org_1", "ses_i", 2, second, 1), {
          version: 2,
          written: true,
          uploadedBytes: 0,
          uploadedChunks: 0,
          reusedChunks: 1,
          inlinedChunks: 2
        })
        assert.deepStrictEqual([yield* count("chunks"), yield* count("manifests")], [1, 2])

        // Another process (no cached manifests) restores both forms; so does this one.
        const other = makeCheckpointStore(objects, secrets)
        assert.deepStrictEqual(asText(yield* other.load("org_1", "ses_i", 1)), asText(first))
        assert.deepStrictEqual(asText(yield* other.load("org_1", "ses_i", 2)), asText(second))
        assert.deepStrictEqual((yield* checkpoints.load("org_1", "ses_i", 2)).files.get("big.bin"), big)

        // Prune keeps the chunk a kept manifest names; once none does, it goes (an inlined content protects nothing).
        const pruner = makeCheckpointStore(objects, secrets, { chunkGraceMs: 0 })
        assert.deepStrictEqual(yield* pruner.prune("org_1", "ses_i", 1), { keptVersions: [2], deletedManifests: 1, deletedChunks: 0 })
        yield* checkpoints.save("org_1", "ses_i", 3, state({ "workspace/transcript.md": "turn 3" }), 2)
        assert.deepStrictEqual(yield* pruner.prune("org_1", "ses_i", 1), { keptVersions: [3], deletedManifests: 1, deletedChunks: 1 })
        assert.deepStrictEqual([yield* count("chunks"), yield* count("manifests")], [0, 1])
        assert.deepStrictEqual(asText(yield* other.load("org_1", "ses_i", 3)), { "workspace/transcript.md": "turn 3" })
      }).pipe(Effect.provide(checkpointLayer(store()))))

    it.effect("prune keeps the newest K manifests and only the chunks they name", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const objects = yield* ObjectStore
        for (const version of [1, 2, 3, 4]) {
          yield* checkpoints.save("org_1", "ses_2", version, state({ "stable.txt": "same", "turn.txt": `turn ${version}` }))
        }
        assert.strictEqual((yield* objects.list("checkpoints/org_1/ses_2/chunks/")).length, 5)

        const pruned = yield* checkpoints.prune("org_1", "ses_2", 2)
        assert.deepStrictEqual(pruned, { keptVersions: [3, 4], deletedManifests: 2, deletedChunks: 2 })
        assert.deepStrictEqual(yield* checkpoints.versions("org_1", "ses_2"), [3, 4])
        assert.strictEqual((yield* objects.list("checkpoints/org_1/ses_2/chunks/")).length, 3)
        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_2", 3)), { "stable.txt": "same", "turn.txt": "turn 3" })
        assert.strictEqual(failureOf(yield* Effect.exit(checkpoints.load("org_1", "ses_2", 2)))?._tag, "ObjectNotFound")

        const again = yield* checkpoints.prune("org_1", "ses_2", 0)
        assert.deepStrictEqual(again.keptVersions, [4])
        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_2", 4)), { "stable.txt": "same", "turn.txt": "turn 4" })
      }).pipe(Effect.provide(checkpointLayer(store(), { ...chunksOnly, chunkGraceMs: 0 }))))

    it.effect("during an object-store outage save and restore fail with ObjectStoreUnavailable; both work after it", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const faults = yield* FaultyObjectStore.ObjectStoreFaults
        const files = state({ "workspace/a.txt": "alpha", "workspace/b.txt": "beta" })
        yield* checkpoints.save("org_1", "ses_3", 1, files)

        yield* faults.outageFor("1 minute")
        assert.strictEqual(failureOf(yield* Effect.exit(checkpoints.load("org_1", "ses_3", 1)))?._tag, "ObjectStoreUnavailable")
        assert.strictEqual(
          failureOf(yield* Effect.exit(checkpoints.save("org_1", "ses_3", 2, files)))?._tag,
          "ObjectStoreUnavailable"
        )

        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* checkpoints.versions("org_1", "ses_3"), [1])
        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_3", 1)), asText(files))

        yield* faults.failNext(1, ["put"])
        assert.strictEqual(
          failureOf(yield* Effect.exit(checkpoints.save("org_1", "ses_3", 2, state({ "workspace/c.txt": "gamma" }))))?._tag,
          "ObjectStoreUnavailable"
        )
        assert.deepStrictEqual(yield* checkpoints.versions("org_1", "ses_3"), [1])
      }).pipe(Effect.provide(checkpointLayer(store()))))

    it.effect("a chunk moved under another name, or read as another org, does not restore", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const objects = yield* ObjectStore
        yield* checkpoints.save("org_1", "ses_4", 1, state({ "a.txt": "alpha", "b.txt": "beta" }))
        const [first, second] = yield* objects.list("checkpoints/org_1/ses_4/chunks/")
        yield* objects.put(second!.key, yield* readAll(yield* objects.get(first!.key)))
        assert.strictEqual(failureOf(yield* Effect.exit(checkpoints.load("org_1", "ses_4", 1)))?._tag, "SecretRevealFailed")

        yield* checkpoints.save("org_1", "ses_5", 1, state({ "a.txt": "alpha" }))
        const manifest = yield* readAll(yield* objects.get("checkpoints/org_1/ses_5/manifests/1.json"))
        yield* objects.put("checkpoints/org_2/ses_5/manifests/1.json", manifest)
        assert.strictEqual(failureOf(yield* Effect.exit(checkpoints.load("org_2", "ses_5", 1)))?._tag, "SecretRevealFailed")
        assert.strictEqual(failureOf(yield* Effect.exit(checkpoints.load("../x", "ses_5", 1)))?._tag, "InvalidObjectKey")
      }).pipe(Effect.provide(checkpointLayer(store(), chunksOnly))))
  })
}

describe("CheckpointStore prune beside another owner's save", () => {
  /** The new owner's view of the shared store: its manifest put waits for `release` (chunks are already written). */
  const gatedManifests = (inner: ObjectStore["Service"], chunksWritten: Deferred.Deferred<void>, release: Deferred.Deferred<void>) =>
    ObjectStore.of({
      ...inner,
      put: (key, content, options) =>
        key.includes("/manifests/")
          ? Deferred.succeed(chunksWritten, undefined).pipe(
            Effect.andThen(Deferred.await(release)),
            Effect.andThen(inner.put(key, content, options))
          )
          : inner.put(key, content, options)
    })

  it.effect("a stale owner's prune keeps the chunks a new owner uploaded before its manifest landed", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const secrets = yield* SecretAdapter
      const oldOwner = makeCheckpointStore(objects, secrets, chunksOnly)
      const chunksWritten = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const newOwner = makeCheckpointStore(gatedManifests(objects, chunksWritten, release), secrets, chunksOnly)

      // The old owner saved (and acked) version 1 long ago.
      yield* oldOwner.save("org_1", "ses_r", 1, state({ "a.txt": "old alpha" }))
      yield* TestClock.adjust(DEFAULT_CHUNK_GRACE_MS * 2)

      // The new owner (epoch 2) uploads its chunks; its manifest has not landed yet.
      const newState = state({ "a.txt": "new alpha", "b.txt": "new beta" })
      const saving = yield* Effect.forkChild(newOwner.save("org_1", "ses_r", 2_000_001, newState))
      yield* Deferred.await(chunksWritten)
      assert.strictEqual((yield* objects.list("checkpoints/org_1/ses_r/chunks/")).length, 3)

      // The stale owner's ack was its last act; it prunes now, keeping only its own version.
      const pruned = yield* oldOwner.prune("org_1", "ses_r", 1)
      assert.deepStrictEqual(pruned, { keptVersions: [1], deletedManifests: 0, deletedChunks: 0 })

      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(saving)
      assert.deepStrictEqual(asText(yield* newOwner.load("org_1", "ses_r", 2_000_001)), asText(newState))

      // Once the new owner's manifest is the newest, the old version's chunk goes when it is past the grace window.
      const later = yield* oldOwner.prune("org_1", "ses_r", 1)
      assert.deepStrictEqual(later, { keptVersions: [2_000_001], deletedManifests: 1, deletedChunks: 1 })
      assert.deepStrictEqual(asText(yield* newOwner.load("org_1", "ses_r", 2_000_001)), asText(newState))
    }).pipe(Effect.provide(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory))))

  it.effect("a prune after this process's own saves reads no manifest back; another process's prune reads them once", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const secrets = yield* SecretAdapter
      const gets: Array<string> = []
      const counted = ObjectStore.of({ ...objects, get: (key) => Effect.andThen(Effect.sync(() => gets.push(key)), objects.get(key)) })
      const owner = makeCheckpointStore(counted, secrets, { ...chunksOnly, chunkGraceMs: 0 })
      for (const version of [1, 2, 3]) yield* owner.save("org_1", "ses_c", version, state({ "turn.txt": `turn ${version}` }))
      assert.deepStrictEqual(yield* owner.prune("org_1", "ses_c", 2), { keptVersions: [2, 3], deletedManifests: 1, deletedChunks: 1 })
      assert.deepStrictEqual(gets, [], "the kept manifests came from this process's saves")
      const other = makeCheckpointStore(counted, secrets, { ...chunksOnly, chunkGraceMs: 0 })
      yield* owner.save("org_1", "ses_c", 4, state({ "turn.txt": "turn 4" }))
      assert.deepStrictEqual(yield* other.prune("org_1", "ses_c", 2), { keptVersions: [3, 4], deletedManifests: 1, deletedChunks: 1 })
      assert.deepStrictEqual(gets.length, 2, "a process that did not write them reads each kept manifest")
      yield* other.prune("org_1", "ses_c", 2)
      assert.deepStrictEqual(gets.length, 2, "and only once")
      assert.deepStrictEqual(asText(yield* other.load("org_1", "ses_c", 4)), { "turn.txt": "turn 4" })
    }).pipe(Effect.provide(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory))))

  it.effect("a manifest from before inlining (every content a chunk) restores, and its chunks are reused", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const secrets = yield* SecretAdapter
      const before = makeCheckpointStore(objects, secrets, chunksOnly)
      const files = state({ "a.txt": "alpha", "b.txt": "beta" })
      yield* before.save("org_1", "ses_f", 1, files)
      const after = makeCheckpointStore(objects, secrets)
      assert.deepStrictEqual(asText(yield* after.load("org_1", "ses_f", 1)), asText(files))
      const saved = yield* after.save("org_1", "ses_f", 2, state({ "a.txt": "alpha", "b.txt": "beta", "c.txt": "gamma" }), 1)
      assert.deepStrictEqual([saved.reusedChunks, saved.inlinedChunks, saved.uploadedChunks], [2, 1, 0])
      assert.deepStrictEqual(asText(yield* before.load("org_1", "ses_f", 1)), asText(files))
    }).pipe(Effect.provide(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory))))

  it.effect("a state equal to the version it replaces writes nothing; a process that does not know that version saves", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const secrets = yield* SecretAdapter
      const puts: Array<string> = []
      const counted = ObjectStore.of({ ...objects, put: (key, content, options) => Effect.andThen(Effect.sync(() => puts.push(key)), objects.put(key, content, options)) })
      const owner = makeCheckpointStore(counted, secrets)
      const unchanged = (version: number) => ({ version, written: false, uploadedBytes: 0, uploadedChunks: 0, reusedChunks: 0, inlinedChunks: 0 })

      assert.deepStrictEqual(yield* owner.save("org_1", "ses_n", 1, state({}), 0), unchanged(0), "the empty state is version 0")
      const files = state({ "a.txt": "alpha", "b.txt": "beta" })
      assert.isTrue((yield* owner.save("org_1", "ses_n", 1, files, 0)).written)
      assert.deepStrictEqual(yield* owner.save("org_1", "ses_n", 2, state({ "b.txt": "beta", "a.txt": "alpha" }), 1), unchanged(1))
      assert.deepStrictEqual(puts, ["checkpoints/org_1/ses_n/manifests/1.json"])
      assert.deepStrictEqual(yield* owner.versions("org_1", "ses_n"), [1])

      const changes: ReadonlyArray<Record<string, string>> = [{ "a.txt": "alpha" }, { "a.txt": "alpha", "b.txt": "BETA" }, { "a.txt": "alpha", "b.txt": "beta", "c.txt": "" }]
      for (const changed of changes) {
        assert.isTrue((yield* owner.save("org_1", "ses_n", 2, state(changed), 1)).written, JSON.stringify(changed))
      }
      // Without the replaced version's manifest in hand, a save never assumes: it writes.
      const other = makeCheckpointStore(counted, secrets)
      assert.isTrue((yield* other.save("org_1", "ses_n", 3, files, 1)).written)
      assert.isTrue((yield* owner.save("org_1", "ses_n", 4, files, undefined)).written)
      // Once it has read that version (a restore), it knows.
      yield* other.load("org_1", "ses_n", 3)
      assert.deepStrictEqual(yield* other.save("org_1", "ses_n", 5, files, 3), unchanged(3))
    }).pipe(Effect.provide(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory))))

  it.effect("a crash between a chunk and its manifest leaves the last saved version restorable; the orphan chunk goes later", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const secrets = yield* SecretAdapter
      // The process dies after the chunk landed: its manifest put never happens (here: fails).
      const crashing = ObjectStore.of({
        ...objects,
        put: (key, content, options) =>
          key.includes("/manifests/")
            ? Effect.fail(new ObjectStoreUnavailable({ operation: "put", key, message: "process killed" }))
            : objects.put(key, content, options)
      })
      const checkpoints = makeCheckpointStore(objects, secrets, { chunkGraceMs: DEFAULT_CHUNK_GRACE_MS })
      const first = state({ "a.txt": "alpha" })
      yield* checkpoints.save("org_1", "ses_x", 1, first, 0)
      const big = new Uint8Array(DEFAULT_INLINE_MAX_BYTES + 1).fill(7)
      const dying = makeCheckpointStore(crashing, secrets)
      assert.strictEqual(failureOf(yield* Effect.exit(dying.save("org_1", "ses_x", 2, state({ "a.txt": "alpha", "big.bin": big }), 1)))?._tag, "ObjectStoreUnavailable")
      assert.strictEqual((yield* objects.keys("checkpoints/org_1/ses_x/chunks/")).length, 1, "the chunk landed")

      const restarted = makeCheckpointStore(objects, secrets)
      assert.deepStrictEqual(yield* restarted.versions("org_1", "ses_x"), [1])
      assert.deepStrictEqual(asText(yield* restarted.load("org_1", "ses_x", 1)), asText(first))
      assert.strictEqual(failureOf(yield* Effect.exit(restarted.load("org_1", "ses_x", 2)))?._tag, "ObjectNotFound")
      assert.strictEqual((yield* restarted.prune("org_1", "ses_x", 1)).deletedChunks, 0, "inside the grace window")
      yield* TestClock.adjust(DEFAULT_CHUNK_GRACE_MS)
      assert.deepStrictEqual(yield* restarted.prune("org_1", "ses_x", 1), { keptVersions: [1], deletedManifests: 0, deletedChunks: 1 })
      assert.deepStrictEqual(asText(yield* restarted.load("org_1", "ses_x", 1)), asText(first))
    }).pipe(Effect.provide(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory))))

  it.effect("an orphan chunk younger than the grace window survives prune; an older one is deleted", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const checkpoints = yield* CheckpointStore
      yield* checkpoints.save("org_1", "ses_g", 1, state({ "a.txt": "one" }))
      yield* checkpoints.save("org_1", "ses_g", 2, state({ "a.txt": "two" }))
      assert.strictEqual((yield* checkpoints.prune("org_1", "ses_g", 1)).deletedChunks, 0)
      assert.strictEqual((yield* objects.list("checkpoints/org_1/ses_g/chunks/")).length, 2)
      yield* TestClock.adjust(DEFAULT_CHUNK_GRACE_MS)
      assert.strictEqual((yield* checkpoints.prune("org_1", "ses_g", 1)).deletedChunks, 1)
      assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_g", 2)), { "a.txt": "two" })
    }).pipe(Effect.provide(checkpointLayer(ObjectStore.layerMemory, chunksOnly))))

  it.effect("a reused chunk a concurrent prune removed is uploaded again by the save that names it", () =>
    Effect.gen(function*() {
      const objects = yield* ObjectStore
      const secrets = yield* SecretAdapter
      const checkpoints = makeCheckpointStore(objects, secrets, chunksOnly)
      const chunksWritten = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const saver = makeCheckpointStore(gatedManifests(objects, chunksWritten, release), secrets, chunksOnly)
      yield* checkpoints.save("org_1", "ses_u", 1, state({ "a.txt": "same" }))
      const saving = yield* Effect.forkChild(saver.save("org_1", "ses_u", 2, state({ "a.txt": "same" })))
      yield* Deferred.await(chunksWritten)
      // Stand-in for a prune that read the manifests before version 2 landed and deleted the reused chunk.
      for (const entry of yield* objects.list("checkpoints/org_1/ses_u/chunks/")) yield* objects.delete(entry.key)
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual((yield* Fiber.join(saving)).reusedChunks, 1)
      assert.deepStrictEqual(asText(yield* saver.load("org_1", "ses_u", 2)), { "a.txt": "same" })
    }).pipe(Effect.provide(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory))))
})
