import type { ObjectStoreUnavailable } from "@cowork/domain"
import type { Metrics } from "@cowork/observability"
import { DataDir, type ObjectStore } from "@cowork/services"
import { Config, ConfigProvider, Effect, Layer } from "effect"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as FileObjectStore from "./FileObjectStore.ts"
import * as S3ObjectStore from "./S3ObjectStore.ts"

export type ObjectStoreLocation =
  | { readonly _tag: "File"; readonly rootDir: string }
  | { readonly _tag: "S3"; readonly uri: string }

/** `file:///abs/dir` or `s3://bucket/prefix`; unset or empty means `<dataDir>/objects`. */
export const parseObjectStoreUri = (uri: string, dataDir: string): ObjectStoreLocation | undefined => {
  if (uri === "") return { _tag: "File", rootDir: Path.resolve(dataDir, "objects") }
  if (uri.startsWith("s3://")) return S3ObjectStore.parseS3Uri(uri) === undefined ? undefined : { _tag: "S3", uri }
  if (uri.startsWith("file://")) {
    try {
      return { _tag: "File", rootDir: fileURLToPath(uri) }
    } catch {
      return undefined
    }
  }
  return undefined
}

/**
 * The object store from OPEN_COWORK_OBJECT_STORE_URI: the local directory (the embedded default) or an
 * S3-compatible bucket, instrumented either way. A directory that cannot be created fails the layer.
 */
export const layerConfig: Layer.Layer<ObjectStore, Config.ConfigError | ObjectStoreUnavailable, Metrics> = Layer.unwrap(
  Effect.gen(function*() {
    const uri = yield* Config.String("OPEN_COWORK_OBJECT_STORE_URI").pipe(Config.withDefault(""))
    const dataDir = yield* DataDir
    const location = parseObjectStoreUri(uri.trim(), dataDir)
    if (location === undefined) {
      return yield* Effect.fail(
        new Config.ConfigError(
          new ConfigProvider.SourceError({
            message: "OPEN_COWORK_OBJECT_STORE_URI must be file:///absolute/dir or s3://bucket/prefix"
          })
        )
      )
    }
    const chosen: Layer.Layer<ObjectStore, Config.ConfigError | ObjectStoreUnavailable, Metrics> = location._tag === "S3"
      ? S3ObjectStore.layerConfig(location.uri)
      : FileObjectStore.layer(location.rootDir)
    return chosen
  })
)
