import { Metrics } from "@cowork/observability"
import { ObjectStore, readAll } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, Exit, type Layer, Option, Stream } from "effect"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  return Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error : undefined
}

let counter = 0
/** A key namespace of its own per test, so tests can share one store. */
const namespace = () => `contract-${Date.now().toString(36)}-${counter++}`

/**
 * The behaviour every ObjectStore adapter owes its callers, run against each adapter (memory, file, S3) with
 * the instrumented layer and a test Metrics registry.
 */
/** Drops the store-clock timestamp so the rest can be compared exactly. */
const withoutTime = <A extends { readonly lastModified?: Date | undefined }>(value: A | undefined) => {
  if (value === undefined) return undefined
  const { lastModified: _lastModified, ...rest } = value
  return rest
}

/** Within the test's wall-clock window (S3 stores whole seconds, so allow a second of rounding either way). */
const recent = (lastModified: Date, startedAt: number) => {
  assert.isAtLeast(lastModified.getTime(), startedAt - 2_000)
  assert.isAtMost(lastModified.getTime(), Date.now() + 2_000)
}

export const objectStoreContract = (
  name: string,
  storeLayer: Layer.Layer<ObjectStore | Metrics, unknown>,
  kind: "memory" | "file" | "s3"
) =>
  layer(storeLayer, { timeout: 60_000 })(`ObjectStore contract: ${name}`, (it) => {
    it.effect("put, head, get (streamed), list and delete round trip, counted as ok", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const metrics = yield* Metrics
        assert.strictEqual(store.kind, kind)
        const ns = namespace()
        const okPuts = yield* metrics.read("open_cowork_cloud_object_store_operations_total", {
          operation: "put",
          status: "ok",
          cloud_object_store_kind: kind
        })

        const startedAt = Date.now()
        const put = yield* store.put(`${ns}/a.txt`, bytes("hello object store"), { contentType: "text/plain" })
        assert.deepStrictEqual(withoutTime(put), { key: `${ns}/a.txt`, size: 18, contentType: "text/plain" })
        yield* store.put(`${ns}/nested/b.bin`, Stream.fromIterable([bytes("one "), bytes("two "), bytes("three")]))

        const head = yield* store.head(`${ns}/a.txt`)
        assert.deepStrictEqual(withoutTime(Option.getOrUndefined(head)), { key: `${ns}/a.txt`, size: 18, contentType: "text/plain" })
        // lastModified comes from the store's clock (the memory store uses the Effect clock, a TestClock here).
        const headModified = Option.getOrThrow(head).lastModified
        assert.instanceOf(headModified, Date)
        if (kind !== "memory") recent(headModified!, startedAt)

        const got = yield* store.get(`${ns}/nested/b.bin`)
        assert.strictEqual(got.metadata.size, 13)
        assert.strictEqual(text(yield* readAll(got)), "one two three")

        const listed = yield* store.list(`${ns}/`)
        assert.deepStrictEqual(listed.map(withoutTime), [
          { key: `${ns}/a.txt`, size: 18 },
          { key: `${ns}/nested/b.bin`, size: 13 }
        ])
        for (const entry of listed) {
          assert.instanceOf(entry.lastModified, Date)
          if (kind !== "memory") recent(entry.lastModified, startedAt)
        }

        yield* store.delete(`${ns}/a.txt`)
        assert.isTrue(Option.isNone(yield* store.head(`${ns}/a.txt`)))
        assert.deepStrictEqual((yield* store.list(`${ns}/`)).map(withoutTime), [{ key: `${ns}/nested/b.bin`, size: 13 }])

        assert.strictEqual(
          yield* metrics.read("open_cowork_cloud_object_store_operations_total", {
            operation: "put",
            status: "ok",
            cloud_object_store_kind: kind
          }),
          okPuts + 2
        )
        assert.isAbove(
          yield* metrics.read("open_cowork_cloud_object_store_operation_duration_ms", { operation: "get", cloud_object_store_kind: kind }),
          0
        )
      }))

    it.effect("a large object streams back in several chunks, byte for byte", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${namespace()}/large.bin`
        const payload = new Uint8Array(300_000).map((_, index) => (index * 31) % 251)
        yield* store.put(key, Stream.fromIterable([payload.subarray(0, 100_000), payload.subarray(100_000)]))
        const got = yield* store.get(key)
        const chunks = yield* Stream.runCollect(got.body)
        const joined = Buffer.concat(chunks)
        assert.strictEqual(joined.byteLength, payload.byteLength)
        assert.isTrue(joined.equals(Buffer.from(payload)))
      }))

    it.effect("overwrite replaces the object", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = `${namespace()}/value`
        yield* store.put(key, bytes("first version"))
        yield* store.put(key, bytes("second"))
        assert.strictEqual(text(yield* readAll(yield* store.get(key))), "second")
        assert.strictEqual(Option.getOrThrow(yield* store.head(key)).size, 6)
      }))

    it.effect("a missing key: get fails with ObjectNotFound, head is none, delete succeeds; counted as ok", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const metrics = yield* Metrics
        const labels = { operation: "get", status: "error", cloud_object_store_kind: kind } as const
        const errorsBefore = yield* metrics.read("open_cowork_cloud_object_store_operations_total", labels)
        const key = `${namespace()}/missing`
        const error = failureOf(yield* Effect.exit(store.get(key)))
        assert.deepInclude(error, { _tag: "ObjectNotFound", key })
        assert.isTrue(Option.isNone(yield* store.head(key)))
        yield* store.delete(key)
        assert.strictEqual(yield* metrics.read("open_cowork_cloud_object_store_operations_total", labels), errorsBefore)
      }))

    it.effect("list matches a partial last segment, sorted, and nothing outside the prefix", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const ns = namespace()
        for (const key of ["b/c2.txt", "b1/x", "bc", "a/b", "c"]) yield* store.put(`${ns}/${key}`, bytes(key))
        assert.deepStrictEqual(
          (yield* store.list(`${ns}/b`)).map((entry) => entry.key),
          [`${ns}/b/c2.txt`, `${ns}/b1/x`, `${ns}/bc`]
        )
        assert.deepStrictEqual(yield* store.list(`${ns}/nothing-here/`), [])
        assert.deepStrictEqual(yield* store.keys(`${ns}/b`), [`${ns}/b/c2.txt`, `${ns}/b1/x`, `${ns}/bc`], "keys: the same names")
        assert.deepStrictEqual(yield* store.keys(`${ns}/nothing-here/`), [])
        assert.strictEqual(failureOf(yield* Effect.exit(store.keys("../")))?._tag, "InvalidObjectKey")
      }))

    it.effect("keys that could escape their namespace are refused with InvalidObjectKey", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        for (const key of ["../escape", "a/../../escape", "/etc/passwd", "a//b", "a\\b", "", "a/./b", "a/", "nul\u0000"]) {
          const error = failureOf(yield* Effect.exit(store.put(key, bytes("x"))))
          assert.strictEqual(error?._tag, "InvalidObjectKey", JSON.stringify(key))
          assert.strictEqual(failureOf(yield* Effect.exit(store.get(key)))?._tag, "InvalidObjectKey")
        }
        assert.strictEqual(failureOf(yield* Effect.exit(store.list("../")))?._tag, "InvalidObjectKey")
      }))
  })

