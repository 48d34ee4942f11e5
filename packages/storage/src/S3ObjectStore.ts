import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client
} from "@aws-sdk/client-s3"
import { type InvalidObjectKey, ObjectNotFound, type ObjectStoreUnavailable } from "@cowork/domain"
import type { Metrics } from "@cowork/observability"
import {
  collectContent,
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
import { Config, ConfigProvider, Effect, Layer, Option, Redacted, type Scope, Stream } from "effect"
import * as InstrumentedObjectStore from "./InstrumentedObjectStore.ts"

/** Where and how to reach an S3-compatible store (AWS S3, MinIO, GCS interop, R2, Spaces). */
export interface S3Settings {
  readonly bucket: string
  /** Key prefix inside the bucket, `""` or ending in `/`. */
  readonly prefix: string
  readonly region: string
  readonly endpoint: string | undefined
  readonly forcePathStyle: boolean
  /** Static credentials; without them the SDK's default chain (env, profile, workload identity) is used. */
  readonly credentials:
    | { readonly accessKeyId: string; readonly secretAccessKey: Redacted.Redacted<string> }
    | undefined
  /** SDK attempts per call (1 = no SDK-level retry). */
  readonly maxAttempts: number
}

/** `s3://bucket/optional/prefix` → bucket and a normalised prefix; undefined when it is not such a URI. */
export const parseS3Uri = (uri: string): { readonly bucket: string; readonly prefix: string } | undefined => {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri)
  if (match === null) return undefined
  const path = match[2]!.replace(/^\/+|\/+$/g, "")
  return { bucket: match[1]!, prefix: path === "" ? "" : `${path}/` }
}

const httpStatus = (error: unknown) =>
  (error as { readonly $metadata?: { readonly httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode

const isMissing = (error: unknown) => {
  const name = (error as { readonly name?: unknown } | undefined)?.name
  return name === "NoSuchKey" || name === "NotFound" || httpStatus(error) === 404
}

const make = (settings: S3Settings): Effect.Effect<ObjectStore["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new S3Client({
          region: settings.region,
          endpoint: settings.endpoint,
          forcePathStyle: settings.forcePathStyle,
          maxAttempts: settings.maxAttempts,
          credentials: settings.credentials === undefined ? undefined : {
            accessKeyId: settings.credentials.accessKeyId,
            secretAccessKey: Redacted.value(settings.credentials.secretAccessKey)
          },
          // Since early 2025 the SDK adds CRC checksums to every request by default, which some S3-compatible
          // stores reject; send and verify them only where the S3 API requires them.
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED"
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    const { bucket, prefix } = settings

    const call = <A>(operation: ObjectStoreOperation, key: string | undefined, send: (signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({ try: send, catch: (error) => error }).pipe(
        Effect.mapError((error) => ({ error, failure: unavailable(operation, key, error) }))
      )

    const put = <E>(
      key: string,
      content: ObjectContent<E>,
      options?: PutOptions
    ): Effect.Effect<ObjectMetadata, E | ObjectStoreUnavailable | InvalidObjectKey> =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        // PutObject needs the length up front; checkpoint chunks and size-limited artifacts fit in memory.
        const bytes = yield* collectContent(content)
        yield* call("put", key, (abortSignal) =>
          client.send(
            new PutObjectCommand({ Bucket: bucket, Key: prefix + key, Body: bytes, ContentType: options?.contentType }),
            { abortSignal }
          )).pipe(Effect.mapError(({ failure }) => failure))
        return { key, size: bytes.byteLength, contentType: options?.contentType }
      })

    const get = (key: string) =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const response = yield* call("get", key, () =>
          client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + key }))).pipe(
            Effect.catch(({ error, failure }) =>
              Effect.fail(isMissing(error) ? new ObjectNotFound({ key }) : failure)
            )
          )
        const source = response.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined
        const body = source === undefined
          ? Stream.empty
          : Stream.fromAsyncIterable(source, (error) => unavailable("get", key, error)).pipe(
            Stream.ensuring(Effect.sync(() => source.destroy?.()))
          )
        return {
          metadata: { key, size: response.ContentLength ?? 0, contentType: response.ContentType, lastModified: response.LastModified },
          body
        }
      })

    const head = (key: string) =>
      Effect.gen(function*() {
        yield* validateObjectKey(key)
        const response = yield* call("head", key, (abortSignal) =>
          client.send(new HeadObjectCommand({ Bucket: bucket, Key: prefix + key }), { abortSignal })).pipe(
            Effect.map(Option.some),
            Effect.catch(({ error, failure }) => isMissing(error) ? Effect.succeed(Option.none()) : Effect.fail(failure))
          )
        return Option.map(response, (found): ObjectMetadata => ({
          key,
          size: found.ContentLength ?? 0,
          contentType: found.ContentType,
          lastModified: found.LastModified
        }))
      })

    const remove = (key: string) =>
      validateObjectKey(key).pipe(
        Effect.andThen(
          call("delete", key, (abortSignal) =>
            client.send(new DeleteObjectCommand({ Bucket: bucket, Key: prefix + key }), { abortSignal })).pipe(
              Effect.mapError(({ failure }) => failure)
            )
        ),
        Effect.asVoid
      )

    const list = (keyPrefix: string) =>
      Effect.gen(function*() {
        yield* validateObjectPrefix(keyPrefix)
        const found: Array<ObjectListing> = []
        let continuationToken: string | undefined
        do {
          const page = yield* call("list", keyPrefix, (abortSignal) =>
            client.send(
              new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix + keyPrefix, ContinuationToken: continuationToken }),
              { abortSignal }
            )).pipe(Effect.mapError(({ failure }) => failure))
          for (const object of page.Contents ?? []) {
            if (object.Key !== undefined) {
              found.push({
                key: object.Key.slice(prefix.length),
                size: object.Size ?? 0,
                // Absent only from a non-conforming store: treat the object as just written (never pruned early).
                lastModified: object.LastModified ?? new Date()
              })
            }
          }
          continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (continuationToken !== undefined)
        return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      })

    // A listing page carries every object's size and age anyway: the names cost no more than the full listing.
    const keys = (keyPrefix: string) => Effect.map(list(keyPrefix), (found) => found.map((entry) => entry.key))

    return ObjectStore.of({ kind: "s3", put, get, head, delete: remove, list, keys })
  })

export const layer = (settings: S3Settings): Layer.Layer<ObjectStore, never, Metrics> =>
  InstrumentedObjectStore.layer(make(settings))

const optional = (name: string) =>
  Config.String(name).pipe(Config.option, Config.map((value) => Option.getOrUndefined(Option.filter(value, (v) => v !== ""))))

const invalid = (message: string) => Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({ message })))

/**
 * Settings for `s3://bucket/prefix` from OPEN_COWORK_OBJECT_STORE_ENDPOINT, _REGION (default us-east-1),
 * _FORCE_PATH_STYLE (default false; MinIO and most self-hosted stores need true), _ACCESS_KEY_ID and
 * _SECRET_ACCESS_KEY (both or neither).
 */
export const settingsFromConfig = (uri: string): Effect.Effect<S3Settings, Config.ConfigError> =>
  Effect.gen(function*() {
    const location = parseS3Uri(uri)
    if (location === undefined) return yield* invalid("OPEN_COWORK_OBJECT_STORE_URI must look like s3://bucket/prefix")
    const accessKeyId = yield* optional("OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID")
    const secretAccessKey = yield* Config.Redacted("OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY").pipe(Config.option)
    if ((accessKeyId === undefined) !== Option.isNone(secretAccessKey)) {
      return yield* invalid(
        "set both OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID and OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY, or neither"
      )
    }
    return {
      ...location,
      region: (yield* optional("OPEN_COWORK_OBJECT_STORE_REGION")) ?? "us-east-1",
      endpoint: yield* optional("OPEN_COWORK_OBJECT_STORE_ENDPOINT"),
      forcePathStyle: yield* Config.Boolean("OPEN_COWORK_OBJECT_STORE_FORCE_PATH_STYLE").pipe(Config.withDefault(false)),
      credentials: accessKeyId === undefined || Option.isNone(secretAccessKey)
        ? undefined
        : { accessKeyId, secretAccessKey: secretAccessKey.value },
      maxAttempts: 3
    }
  })

export const layerConfig = (uri: string): Layer.Layer<ObjectStore, Config.ConfigError, Metrics> =>
  Layer.unwrap(Effect.map(settingsFromConfig(uri), layer))
