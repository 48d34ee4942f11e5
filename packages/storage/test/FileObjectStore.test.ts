import { ObjectStoreUnavailable } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ObjectStore, readAll } from "@cowork/services"
import { FileObjectStore, ObjectStoreConfig } from "@cowork/storage"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Stream } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { failureOf, objectStoreContract } from "./support/ObjectStoreContract.ts"

const tempDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-objects-"))
const bytes = (text: string) => new TextEncoder().encode(text)

const filesUnder = (dir: string): Array<string> =>
  Fs.existsSync(dir) ? (Fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<Fs.Dirent>)
    .filter((entry) => entry.isFile())
    .map((entry) => Path.relative(dir, Path.join(entry.parentPath, entry.name))) : []

objectStoreContract("file", FileObjectStore.layer(tempDir()).pipe(Layer.provideMerge(Metrics.layerTest("worker"))), "file")

describe("FileObjectStore", () => {
  it.effect("a put whose stream fails leaves the previous object and no temp file behind", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const store = yield* FileObjectStore.make(root)
      yield* store.put("doc", bytes("committed"))
      const failing = Stream.concat(
        Stream.succeed(bytes("partial bytes that must never be visible")),
        Stream.fail(new ObjectStoreUnavailable({ operation: "put", message: "upstream broke" }))
      )
      const error = failureOf(yield* Effect.exit(store.put("doc", failing)))
      assert.strictEqual(error?.message, "upstream broke")
      assert.strictEqual(new TextDecoder().decode(yield* readAll(yield* store.get("doc"))), "committed")
      assert.deepStrictEqual(filesUnder(Path.join(root, "tmp")), [])
    }))

  it.effect("refused keys write nothing outside the root; deleting prunes empty directories", () =>
    Effect.gen(function*() {
      const parent = tempDir()
      const root = Path.join(parent, "objects")
      const store = yield* FileObjectStore.make(root)
      yield* Effect.exit(store.put("../outside", bytes("x")))
      yield* Effect.exit(store.put("a/../../outside", bytes("x")))
      assert.deepStrictEqual(Fs.readdirSync(parent), ["objects"])

      yield* store.put("deep/er/key", bytes("x"), { contentType: "text/plain" })
      yield* store.delete("deep/er/key")
      assert.deepStrictEqual(Fs.readdirSync(Path.join(root, "data")), [])
      assert.deepStrictEqual(Fs.readdirSync(Path.join(root, "meta")), [])
    }))

  it.effect("a body read after the object was replaced fails instead of mixing versions", () =>
    Effect.gen(function*() {
      const store = yield* FileObjectStore.make(tempDir())
      yield* store.put("doc", bytes("old"))
      const stale = yield* store.get("doc")
      yield* store.put("doc", bytes("new content"))
      assert.strictEqual(failureOf(yield* Effect.exit(readAll(stale)))?._tag, "ObjectStoreUnavailable")
    }))

  it.effect("layerConfig: unset URI → <OPEN_COWORK_DATA_DIR>/objects, file:///dir → that dir, anything else → ConfigError", () =>
    Effect.gen(function*() {
      const useStore = (env: Record<string, string>) =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          yield* store.put("probe/key", bytes("x"))
          return store.kind
        }).pipe(
          Effect.provide(
            ObjectStoreConfig.layerConfig.pipe(
              Layer.provide(Metrics.layerTest("worker")),
              Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
            )
          )
        )
      const dataDir = tempDir()
      assert.strictEqual(yield* useStore({ OPEN_COWORK_DATA_DIR: dataDir }), "file")
      assert.isTrue(Fs.existsSync(Path.join(dataDir, "objects", "data", "probe", "key")))

      const explicit = tempDir()
      yield* useStore({ OPEN_COWORK_OBJECT_STORE_URI: pathToFileURL(explicit).href })
      assert.isTrue(Fs.existsSync(Path.join(explicit, "data", "probe", "key")))

      for (const uri of ["ftp://host/x", "/plain/path", "s3://"]) {
        const error = failureOf(yield* Effect.exit(useStore({ OPEN_COWORK_OBJECT_STORE_URI: uri })))
        assert.strictEqual(error?._tag, "ConfigError", uri)
      }
      assert.deepStrictEqual(ObjectStoreConfig.parseObjectStoreUri("s3://bucket/p", "."), { _tag: "S3", uri: "s3://bucket/p" })
    }))
})
