import { SecretAdapterUnavailable } from "@cowork/domain"
import { DataDir, makeSecretAdapter, MASTER_KEY_BYTES, SecretAdapter } from "@cowork/services"
import { Config, ConfigProvider, Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"

/**
 * The embedded default secret adapter: one master key (32 random bytes, base64) in a local file created with
 * mode 0600 on first use. Back the file up with the database: without it, checkpoints and other envelopes
 * cannot be opened.
 */

const errorCode = (error: unknown) => (error as { readonly code?: unknown }).code

const unavailable = (message: string) => new SecretAdapterUnavailable({ message })

const decodeKey = (text: string, path: string): Effect.Effect<Redacted.Redacted<Uint8Array>, SecretAdapterUnavailable> => {
  const bytes = Buffer.from(text.trim(), "base64")
  return bytes.byteLength === MASTER_KEY_BYTES && bytes.toString("base64") === text.trim()
    ? Effect.succeed(Redacted.make(new Uint8Array(bytes)))
    : Effect.fail(unavailable(`key file ${path} is not ${MASTER_KEY_BYTES} base64-encoded bytes`))
}

const readKeyFile = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      const stat = await Fs.stat(path)
      return { text: await Fs.readFile(path, "utf8"), mode: stat.mode & 0o777 }
    },
    catch: (error) => error
  })

const createKeyFile = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      await Fs.mkdir(Path.dirname(path), { recursive: true, mode: 0o700 })
      const text = `${Crypto.randomBytes(MASTER_KEY_BYTES).toString("base64")}\n`
      // `wx` fails when another process created the file first; that process's key wins.
      await Fs.writeFile(path, text, { flag: "wx", mode: 0o600 })
      return text
    },
    catch: (error) => error
  })

/** Reads the master key at `path`, creating it when absent. */
export const loadOrCreateMasterKey = (path: string): Effect.Effect<Redacted.Redacted<Uint8Array>, SecretAdapterUnavailable> =>
  Effect.gen(function*() {
    const existing = yield* readKeyFile(path).pipe(
      Effect.map((file) => file as { readonly text: string; readonly mode: number } | undefined),
      Effect.catch((error) =>
        errorCode(error) === "ENOENT"
          ? Effect.succeed(undefined)
          : Effect.fail(unavailable(`cannot read key file ${path}: ${errorCode(error) ?? "error"}`))
      )
    )
    if (existing !== undefined) {
      if ((existing.mode & 0o077) !== 0) {
        yield* Effect.logWarning("secret key file is readable by group or others; chmod 600 it").pipe(
          Effect.annotateLogs({ path, mode: existing.mode.toString(8) })
        )
      }
      return yield* decodeKey(existing.text, path)
    }
    const created = yield* createKeyFile(path).pipe(
      Effect.tap(() => Effect.logInfo("created secret key file").pipe(Effect.annotateLogs({ path }))),
      Effect.catch((error) =>
        errorCode(error) === "EEXIST"
          ? readKeyFile(path).pipe(
            Effect.map((file) => file.text),
            Effect.mapError(() => unavailable(`cannot read key file ${path}`))
          )
          : Effect.fail(unavailable(`cannot create key file ${path}: ${errorCode(error) ?? "error"}`))
      )
    )
    return yield* decodeKey(created, path)
  })

/** `file:/abs/path` or `file:///abs/path`; other schemes (KMS, secret managers) belong to other adapters. */
export const parseKeyRef = (ref: string): string | undefined => {
  if (!ref.startsWith("file:")) return undefined
  const rest = ref.startsWith("file://") ? ref.slice("file://".length) : ref.slice("file:".length)
  return Path.isAbsolute(rest) ? Path.normalize(decodeURIComponent(rest)) : undefined
}

export const make = (keyFilePath: string): SecretAdapter["Service"] => makeSecretAdapter(loadOrCreateMasterKey(keyFilePath))

export const layer = (keyFilePath: string): Layer.Layer<SecretAdapter> => Layer.sync(SecretAdapter, () => make(keyFilePath))

/** `OPEN_COWORK_CLOUD_SECRET_KEY_REF=file:/abs/path`, or `<OPEN_COWORK_DATA_DIR>/secret.key`. */
export const keyFilePathConfig: Effect.Effect<string, Config.ConfigError> = Effect.gen(function*() {
  const ref = yield* Config.String("OPEN_COWORK_CLOUD_SECRET_KEY_REF").pipe(Config.withDefault(""))
  if (ref === "") {
    const dataDir = yield* DataDir
    return Path.resolve(dataDir, "secret.key")
  }
  const path = parseKeyRef(ref)
  if (path === undefined) {
    return yield* Effect.fail(
      new Config.ConfigError(
        new ConfigProvider.SourceError({
          message: "OPEN_COWORK_CLOUD_SECRET_KEY_REF must be file:/absolute/path for the local key file adapter"
        })
      )
    )
  }
  return path
})

export const layerConfig: Layer.Layer<SecretAdapter, Config.ConfigError> = Layer.effect(
  SecretAdapter,
  Effect.map(keyFilePathConfig, make)
)
