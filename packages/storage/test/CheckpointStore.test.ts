import { Metrics } from "@cowork/observability"
import { ObjectStore, readAll, type RuntimeState, SecretAdapter } from "@cowork/services"
import { CheckpointStore, FaultyObjectStore, FileObjectStore } from "@cowork/storage"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
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
const checkpointLayer = (store: Layer.Layer<ObjectStore>) =>
  CheckpointStore.layer.pipe(
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
          uploadedBytes: transcript.byteLength + 11 + 2,
          uploadedChunks: 3,
          reusedChunks: 0
        })

        const second = state({ ...asText(first), "workspace/transcript.md": transcript, "workspace/notes.txt": "second notes!" })
        const saved2 = yield* checkpoints.save("org_1", "ses_1", 2, second)
        assert.deepStrictEqual(saved2, { version: 2, uploadedBytes: 13, uploadedChunks: 1, reusedChunks: 2 })

        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_1", 1)), asText(first))
        assert.deepStrictEqual(asText(yield* checkpoints.load("org_1", "ses_1", 2)), asText(second))
        assert.deepStrictEqual(yield* checkpoints.versions("org_1", "ses_1"), [1, 2])

        const notesHash = Crypto.createHash("sha256").update("second notes!").digest("hex")
        const chunk = yield* readAll(yield* objects.get(`checkpoints/org_1/ses_1/chunks/${notesHash}`))
        assert.notInclude(Buffer.from(chunk).toString("latin1"), "second notes")
        const manifest = yield* readAll(yield* objects.get("checkpoints/org_1/ses_1/manifests/2.json"))
        assert.notInclude(Buffer.from(manifest).toString("latin1"), "workspace/notes.txt")
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
      }).pipe(Effect.provide(checkpointLayer(store()))))

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
      }).pipe(Effect.provide(checkpointLayer(store()))))
  })
}
