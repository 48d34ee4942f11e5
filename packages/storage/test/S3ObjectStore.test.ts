import { Metrics } from "@cowork/observability"
import { ObjectStore, readAll } from "@cowork/services"
import { S3ObjectStore } from "@cowork/storage"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { LocalS3Server, s3StoreLayer } from "./support/LocalS3Server.ts"
import { failureOf, objectStoreContract } from "./support/ObjectStoreContract.ts"

objectStoreContract("s3 (s3rver over HTTP)", s3StoreLayer(), "s3")

describe("S3ObjectStore", () => {
  it.effect("keys live under the URI prefix: two prefixes in one bucket do not see each other", () =>
    Effect.gen(function*() {
      const server = yield* LocalS3Server
      const metrics = yield* Metrics
      const other = yield* Layer.build(
        S3ObjectStore.layer({
          bucket: "cowork-test",
          prefix: "tenant-b/",
          region: "us-east-1",
          endpoint: server.endpoint,
          forcePathStyle: true,
          credentials: { accessKeyId: "S3RVER", secretAccessKey: Redacted.make("S3RVER") },
          maxAttempts: 1
        }).pipe(Layer.provide(Layer.succeed(Metrics, metrics)))
      )
      const tenantA = yield* ObjectStore
      const tenantB = yield* Effect.provide(ObjectStore, other)
      yield* tenantA.put("shared/name", new TextEncoder().encode("a"))
      assert.isTrue(Option.isNone(yield* tenantB.head("shared/name")))
      yield* tenantB.put("shared/name", new TextEncoder().encode("bb"))
      assert.strictEqual(new TextDecoder().decode(yield* readAll(yield* tenantA.get("shared/name"))), "a")
      assert.deepStrictEqual((yield* tenantB.list("shared/")).map(({ key, size }) => ({ key, size })), [{ key: "shared/name", size: 2 }])
    }).pipe(Effect.scoped, Effect.provide(s3StoreLayer("tenant-a/"))))

  it.effect("server stopped: every operation fails with ObjectStoreUnavailable, counted as error", () =>
    Effect.gen(function*() {
      const store = yield* ObjectStore
      const server = yield* LocalS3Server
      const metrics = yield* Metrics
      yield* store.put("before/outage", new TextEncoder().encode("x"))
      yield* server.stop
      const bytes = new TextEncoder().encode("y")
      for (const attempt of [store.get("before/outage"), store.head("before/outage"), store.put("k", bytes), store.delete("k"), store.list("")]) {
        const error = failureOf(yield* Effect.exit(attempt))
        assert.strictEqual(error?._tag, "ObjectStoreUnavailable")
        assert.notInclude(JSON.stringify(error), "S3RVER")
      }
      for (const operation of ["get", "head", "put", "delete", "list"] as const) {
        assert.strictEqual(
          yield* metrics.read("open_cowork_cloud_object_store_operations_total", { operation, status: "error", cloud_object_store_kind: "s3" }),
          1,
          operation
        )
      }
    }).pipe(Effect.provide(s3StoreLayer())))

  it.effect("settings come from the URI and OPEN_COWORK_OBJECT_STORE_* config, the secret kept Redacted", () =>
    Effect.gen(function*() {
      const settings = yield* S3ObjectStore.settingsFromConfig("s3://bucket-name/some/prefix/").pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
          OPEN_COWORK_OBJECT_STORE_ENDPOINT: "http://minio:9000",
          OPEN_COWORK_OBJECT_STORE_REGION: "eu-west-1",
          OPEN_COWORK_OBJECT_STORE_FORCE_PATH_STYLE: "true",
          OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID: "AKIAEXAMPLE",
          OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY: "secret-canary"
        })))
      )
      assert.deepInclude(settings, {
        bucket: "bucket-name",
        prefix: "some/prefix/",
        region: "eu-west-1",
        endpoint: "http://minio:9000",
        forcePathStyle: true
      })
      assert.strictEqual(Redacted.value(settings.credentials!.secretAccessKey), "secret-canary")
      assert.notInclude(JSON.stringify(settings), "secret-canary")

      const halfCredentials = yield* Effect.exit(S3ObjectStore.settingsFromConfig("s3://bucket").pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID: "AKIAEXAMPLE" })))
      ))
      assert.strictEqual(failureOf(halfCredentials)?._tag, "ConfigError")
      assert.deepStrictEqual(S3ObjectStore.parseS3Uri("s3://b"), { bucket: "b", prefix: "" })
      assert.isUndefined(S3ObjectStore.parseS3Uri("https://b/x"))
    }))
})
