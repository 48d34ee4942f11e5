import { SecretAdapterUnavailable, SecretRevealFailed } from "@cowork/domain"
import { Context, Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"

/** An org's symmetric data key. `keyId` names the master key it was derived from (for rotation). */
export interface DataKey {
  readonly orgId: string
  readonly keyId: string
  readonly key: Redacted.Redacted<Uint8Array>
}

/**
 * Per-org data keys and the envelopes sealed with them. `context` binds an envelope to where it belongs (an
 * object key, a column): opening it under another context fails like tampering does.
 */
export class SecretAdapter extends Context.Service<SecretAdapter, {
  readonly dataKeyFor: (orgId: string) => Effect.Effect<DataKey, SecretAdapterUnavailable>
  readonly encrypt: (orgId: string, plaintext: Uint8Array, context?: string) => Effect.Effect<Uint8Array, SecretAdapterUnavailable>
  readonly decrypt: (
    orgId: string,
    envelope: Uint8Array,
    context?: string
  ) => Effect.Effect<Uint8Array, SecretRevealFailed | SecretAdapterUnavailable>
}>()("cowork/SecretAdapter") {
  /** A random master key that lives as long as the layer; for tests. */
  static readonly layerMemory = Layer.sync(
    SecretAdapter,
    () => makeSecretAdapter(Effect.succeed(Redacted.make(new Uint8Array(Crypto.randomBytes(MASTER_KEY_BYTES)))))
  )
}

export const MASTER_KEY_BYTES = 32

/**
 * Envelope v1: `version (1) | keyId (8) | nonce (12) | tag (16) | ciphertext`, AES-256-GCM. The header, the org
 * and the context are authenticated as associated data.
 */
const ENVELOPE_VERSION = 1
const KEY_ID_BYTES = 8
const NONCE_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + KEY_ID_BYTES
const OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES

const hkdf = (master: Uint8Array, info: string, length: number) =>
  new Uint8Array(Crypto.hkdfSync("sha256", master, "cowork-cloud/v1", info, length))

/** Identifies a master key without revealing it: an HKDF output under its own label, never the key's hash. */
const masterKeyIds = new WeakMap<Redacted.Redacted<Uint8Array>, string>()

/** The master key's id (an HKDF of it), computed once per loaded key. */
export const masterKeyId = (master: Redacted.Redacted<Uint8Array>): string => {
  let id = masterKeyIds.get(master)
  if (id === undefined) {
    id = Buffer.from(hkdf(Redacted.value(master), "key-id", KEY_ID_BYTES)).toString("hex")
    masterKeyIds.set(master, id)
  }
  return id
}

const keyObjects = new WeakMap<DataKey, Crypto.KeyObject>()

/** The data key as a prepared cipher key, once per data key (the adapter keeps one data key per org). */
const cipherKey = (dataKey: DataKey): Crypto.KeyObject => {
  let key = keyObjects.get(dataKey)
  if (key === undefined) {
    key = Crypto.createSecretKey(Redacted.value(dataKey.key))
    keyObjects.set(dataKey, key)
  }
  return key
}

/** HKDF-SHA256 of the master key with the org id as info: independent 256-bit keys per org. */
const deriveDataKey = (master: Redacted.Redacted<Uint8Array>, orgId: string): DataKey => ({
  orgId,
  keyId: masterKeyId(master),
  key: Redacted.make(hkdf(Redacted.value(master), `org-data-key:${orgId}`, 32))
})

const associatedData = (header: Uint8Array, orgId: string, context: string) =>
  Buffer.concat([header, Buffer.from(`\u0000${orgId}\u0000${context}`, "utf8")])

const sealEnvelope = (dataKey: DataKey, plaintext: Uint8Array, context = ""): Uint8Array => {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt8(ENVELOPE_VERSION, 0)
  Buffer.from(dataKey.keyId, "hex").copy(header, 1)
  const nonce = Crypto.randomBytes(NONCE_BYTES)
  const cipher = Crypto.createCipheriv("aes-256-gcm", cipherKey(dataKey), nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(associatedData(header, dataKey.orgId, context))
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return new Uint8Array(Buffer.concat([header, nonce, cipher.getAuthTag(), ciphertext]))
}

/** The master key id an envelope names, or a failure when it is not a v1 envelope. */
export const envelopeKeyId = (envelope: Uint8Array): Effect.Effect<string, SecretRevealFailed> =>
  envelope.byteLength < OVERHEAD || envelope[0] !== ENVELOPE_VERSION
    ? Effect.fail(new SecretRevealFailed({ reason: "malformed", message: "not a v1 envelope" }))
    : Effect.succeed(Buffer.from(envelope.subarray(1, HEADER_BYTES)).toString("hex"))

const openEnvelope = (
  dataKey: DataKey,
  envelope: Uint8Array,
  context = ""
): Effect.Effect<Uint8Array, SecretRevealFailed> =>
  Effect.gen(function*() {
    const keyId = yield* envelopeKeyId(envelope)
    if (keyId !== dataKey.keyId) {
      return yield* new SecretRevealFailed({ reason: "unknown_key", message: `sealed with key ${keyId}` })
    }
    const header = envelope.subarray(0, HEADER_BYTES)
    const nonce = envelope.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES)
    const tag = envelope.subarray(HEADER_BYTES + NONCE_BYTES, OVERHEAD)
    const ciphertext = envelope.subarray(OVERHEAD)
    return yield* Effect.try({
      try: () => {
        const decipher = Crypto.createDecipheriv("aes-256-gcm", cipherKey(dataKey), nonce, { authTagLength: TAG_BYTES })
        decipher.setAAD(associatedData(header, dataKey.orgId, context))
        decipher.setAuthTag(tag)
        return new Uint8Array(Buffer.concat([decipher.update(ciphertext), decipher.final()]))
      },
      catch: () =>
        new SecretRevealFailed({
          reason: "authentication_failed",
          message: "envelope does not authenticate for this org and context"
        })
    })
  })

/**
 * A SecretAdapter over one master key, loaded once by `loadMasterKey` (memoised after its first success, so a
 * missing key file can be repaired without a restart).
 */
const makeSecretAdapter = (
  loadMasterKey: Effect.Effect<Redacted.Redacted<Uint8Array>, SecretAdapterUnavailable>
): SecretAdapter["Service"] => makeKeyringSecretAdapter(Effect.map(loadMasterKey, (key) => [key]))

/**
 * A SecretAdapter over a keyring: the first master key seals, every key opens the envelopes that name it (`kid`),
 * so a rotated master key (`cowork admin secrets rotate-kek`) keeps old ciphertext readable. Loaded once.
 */
export const makeKeyringSecretAdapter = (
  loadKeyring: Effect.Effect<ReadonlyArray<Redacted.Redacted<Uint8Array>>, SecretAdapterUnavailable>
): SecretAdapter["Service"] => {
  let ring: { readonly current: Redacted.Redacted<Uint8Array>; readonly byId: ReadonlyMap<string, Redacted.Redacted<Uint8Array>> } | undefined
  const dataKeys = new Map<string, DataKey>()
  const keyring = Effect.suspend(() =>
    ring !== undefined
      ? Effect.succeed(ring)
      : loadKeyring.pipe(
        Effect.flatMap((keys) =>
          keys.length === 0
            ? Effect.fail(new SecretAdapterUnavailable({ message: "no master key" }))
            : Effect.succeed({ current: keys[0]!, byId: new Map(keys.map((key) => [masterKeyId(key), key])) })
        ),
        Effect.tap((loaded) => Effect.sync(() => void (ring = loaded)))
      )
  )
  const derived = (master: Redacted.Redacted<Uint8Array>, orgId: string) => {
    const cacheKey = `${masterKeyId(master)}\u0000${orgId}`
    const cached = dataKeys.get(cacheKey)
    if (cached !== undefined) return cached
    const key = deriveDataKey(master, orgId)
    dataKeys.set(cacheKey, key)
    return key
  }
  const dataKeyFor = (orgId: string) => Effect.map(keyring, (loaded) => derived(loaded.current, orgId))
  return SecretAdapter.of({
    dataKeyFor,
    encrypt: (orgId, plaintext, context) => Effect.map(dataKeyFor(orgId), (key) => sealEnvelope(key, plaintext, context)),
    decrypt: (orgId, envelope, context) =>
      Effect.gen(function*() {
        const loaded = yield* keyring
        const keyId = yield* envelopeKeyId(envelope)
        const master = loaded.byId.get(keyId)
        if (master === undefined) {
          return yield* new SecretRevealFailed({ reason: "unknown_key", message: `sealed with key ${keyId}` })
        }
        return yield* openEnvelope(derived(master, orgId), envelope, context)
      })
  })
}
