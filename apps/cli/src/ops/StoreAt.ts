import { Metrics } from "@cowork/observability"
import { DataDir, type ObjectStore } from "@cowork/services"
import { FileObjectStore, ObjectStoreConfig, S3ObjectStore } from "@cowork/storage"
import { Effect, Layer } from "effect"
import { PgToolError } from "./PgTools.ts"

/**
 * The object store at `uri` (`file:///abs/dir` or `s3://bucket/prefix`, as OPEN_COWORK_OBJECT_STORE_URI; empty:
 * `<OPEN_COWORK_DATA_DIR>/objects`), with its own metrics registry: backup and restore name their stores
 * explicitly.
 */
export const layer = (uri: string): Layer.Layer<ObjectStore, unknown> =>
  Layer.unwrap(Effect.gen(function*() {
    const location = ObjectStoreConfig.parseObjectStoreUri(uri.trim(), yield* DataDir)
    if (location === undefined) {
      return yield* Effect.fail(new PgToolError(`object store URI must be file:///absolute/dir or s3://bucket/prefix (got "${uri}")`))
    }
    const store: Layer.Layer<ObjectStore, unknown, Metrics> = location._tag === "S3"
      ? S3ObjectStore.layerConfig(location.uri)
      : FileObjectStore.layer(location.rootDir)
    return store
  })).pipe(Layer.provide(Metrics.layerTest("all")))
