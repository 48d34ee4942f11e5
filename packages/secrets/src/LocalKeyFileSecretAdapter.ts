import { SecretAdapterUnavailable } from "@cowork/domain"
import { DataDir, makeKeyringSecretAdapter, MASTER_KEY_BYTES, masterKeyId, SecretAdapter } from "@cowork/services"
import { Config, ConfigProvider, Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"

/**
 * The embedded default secret adapter: master keys (32 random bytes, base64, one per line) in a local file created
 * with mode 0600 on first use. The first line seals; every line opens the envelopes that name it, so a rotation
 * (`rotateKeyFile`: a new first line, the old keys kept below it) leaves old ciphertext readable. Back the file up
 * with the database: without it, checkpoints and other envelopes cannot be opened.
 */

const errorCode = (error: unknown) => (error as { readonly code?: unknown }).code

const unavailable = (message: string) => new SecretAdapterUnavailable({ message })

const decodeKeyring = (
  text: string,
  path: string
): Effect.Effect<ReadonlyArray<Redacted.Redacted<Uint8Array>>, SecretAdapterUnavailable> => {
  const lines = text.split("\n").map((line) => line.trim()).filter((line) => line !== "")
  const keys: Array<Redacted.Redacted<Uint8Array>> = []
  for (const line of lines) {
    const bytes = Buffer.from(line, "base64")
    if (bytes.byteLength !== MASTER_KEY_BYTES || bytes.toString("base64") !== line) {
      return Effect.fail(unavailable(`key file ${path} is not lines of ${MASTER_KEY_BYTES} base64-encoded bytes`))
    }
    keys.push(Redacted.make(new Uint8Array(bytes)))
  }
  return keys.length === 0 ? Effect.fail(unavailable(`key file ${path} holds no key`)) : Effect.succeed(keys)
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

/** Reads the master keys at `path` (the sealing one first), creating the file with one key when absent. */
const loadOrCreateKeyring = (path: string): Effect.Effect<ReadonlyArray<Redacted.Redacted<Uint8Array>>, SecretAdapterUnavailable> =>
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
      return yield* decodeKeyring(existing.text, path)
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
    return yield* decodeKeyring(created, path)
  })

/**
 * KEK rotation: a new master key becomes the first line of the key file, the previous ones stay below it (old
 * envelopes keep opening). Written to a temporary file (0600) and renamed over the old one. Returns the key ids
 * (never the keys). Processes holding the file's old contents keep sealing with the old key until restarted.
 */
export const rotateKeyFile = (path: string) =>
  Effect.gen(function*() {
    const previous = yield* loadOrCreateKeyring(path)
    const next = Redacted.make(new Uint8Array(Crypto.randomBytes(MASTER_KEY_BYTES)))
    const ring = [next, ...previous]
    const text = ring.map((key) => Buffer.from(Redacted.value(key)).toString("base64")).join("\n") + "\n"
    const temporary = `${path}.rotate-${process.pid}`
    yield* Effect.tryPromise({
      try: async () => {
        await Fs.writeFile(temporary, text, { flag: "w", mode: 0o600 })
        await Fs.rename(temporary, path)
      },
      catch: (error) => unavailable(`cannot write key file ${path}: ${errorCode(error) ?? "error"}`)
    })
    return { current: masterKeyId(next), retained: previous.map(masterKeyId) }
  })

/** `file:/abs/path` or `file:///abs/path`; other schemes (KMS, secret managers) belong to other adapters. */
const parseKeyRef = (ref: string): string | undefined => {
  if (!ref.startsWith("file:")) return undefined
  const rest = ref.startsWith("file://") ? ref.slice("file://".length) : ref.slice("file:".length)
  return Path.isAbsolute(rest) ? Path.normalize(decodeURIComponent(rest)) : undefined
}

export const make = (keyFilePath: string): SecretAdapter["Service"] => makeKeyringSecretAdapter(loadOrCreateKeyring(keyFilePath))

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
