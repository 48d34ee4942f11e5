import { NotFound, type SecretAdapterUnavailable, type SecretRevealFailed } from "@cowork/domain"
import { Context, Effect, Layer, Redacted } from "effect"
import { envelopeKeyId, SecretAdapter } from "./SecretAdapter.ts"
import { sha256Hex } from "./Secrets.ts"

/**
 * Bring-your-own-key: an org's provider API keys, sealed with the org's data key (the envelope names the master
 * key, `kid`, it was sealed under, so a rotated master key keeps old envelopes readable). Reads return metadata
 * only; the plaintext leaves the store through `reveal` alone, which only the worker's model proxy calls.
 */

export type ByokHealth = "unknown" | "ok" | "failing"

/** What a read shows: never the key, only its last four characters and a fingerprint. */
export interface ByokKeyMetadata {
  readonly provider: string
  readonly last4: string
  /** `sha256:` + the first 16 hex digits of the key's SHA-256: tells two keys apart without revealing either. */
  readonly fingerprint: string
  readonly status: "active"
  readonly health: ByokHealth
  readonly updatedAt: string
}

export interface RevealedKey {
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl: string | undefined
}

/** One stored key as the storage keeps it (the envelope, never the plaintext). */
export interface ByokRow {
  readonly orgId: string
  readonly provider: string
  readonly envelope: Uint8Array
  readonly keyId: string
  readonly last4: string
  readonly fingerprint: string
  readonly baseUrl: string | undefined
  readonly health: ByokHealth
  readonly updatedAt: Date
}

/** The storage under a ByokStore (a map in memory, a table in Postgres). */
export interface ByokRows {
  readonly upsert: (row: Omit<ByokRow, "updatedAt" | "health">) => Effect.Effect<ByokRow>
  readonly get: (orgId: string, provider: string) => Effect.Effect<ByokRow | undefined>
  readonly list: (orgId: string) => Effect.Effect<ReadonlyArray<ByokRow>>
  readonly remove: (orgId: string, provider: string) => Effect.Effect<boolean>
  readonly setHealth: (orgId: string, provider: string, health: ByokHealth) => Effect.Effect<boolean>
  /** Every row (any org) whose envelope names a key other than `keyId`: what a KEK rotation rewraps. */
  readonly sealedWithOtherThan: (keyId: string, limit: number) => Effect.Effect<ReadonlyArray<ByokRow>>
  /** Replaces a row's envelope only if it still holds `previous` (a concurrent store wins). */
  readonly replaceEnvelope: (
    row: ByokRow,
    envelope: Uint8Array,
    keyId: string
  ) => Effect.Effect<boolean>
}

export class ByokStore extends Context.Service<ByokStore, {
  readonly put: (
    orgId: string,
    provider: string,
    input: { readonly apiKey: Redacted.Redacted<string>; readonly baseUrl?: string | undefined }
  ) => Effect.Effect<ByokKeyMetadata, SecretAdapterUnavailable>
  readonly list: (orgId: string) => Effect.Effect<ReadonlyArray<ByokKeyMetadata>>
  readonly get: (orgId: string, provider: string) => Effect.Effect<ByokKeyMetadata, NotFound>
  readonly remove: (orgId: string, provider: string) => Effect.Effect<void, NotFound>
  readonly reveal: (orgId: string, provider: string) => Effect.Effect<RevealedKey, NotFound | SecretRevealFailed | SecretAdapterUnavailable>
  readonly setHealth: (orgId: string, provider: string, health: ByokHealth) => Effect.Effect<void>
  /**
   * Re-seals every key sealed under another master key with the adapter's current one (after a KEK rotation);
   * returns how many were rewrapped. Envelopes it cannot open are left as they are and counted in `failed`.
   */
  readonly rewrap: Effect.Effect<{ readonly rewrapped: number; readonly failed: number }, SecretAdapterUnavailable>
}>()("cowork/ByokStore") {
  /** In memory (envelopes still sealed with the provided `SecretAdapter`). */
  static readonly layerMemory: Layer.Layer<ByokStore, never, SecretAdapter> = Layer.effect(
    ByokStore,
    Effect.suspend(() => makeByokStore(memoryRows()))
  )
}

const contextOf = (orgId: string, provider: string) => `byok:${orgId}:${provider}`

const fingerprintOf = (apiKey: string): string =>
  `sha256:${sha256Hex(apiKey).slice(0, 16)}`

const metadataOf = (row: ByokRow): ByokKeyMetadata => ({
  provider: row.provider,
  last4: row.last4,
  fingerprint: row.fingerprint,
  status: "active",
  health: row.health,
  updatedAt: row.updatedAt.toISOString()
})

const notFound = (provider: string) => new NotFound({ message: `no key stored for provider ${provider}` })

/** A ByokStore over any row storage: sealing, metadata and rotation are the same everywhere. */
export const makeByokStore = (rows: ByokRows) =>
  Effect.gen(function*() {
    const secrets = yield* SecretAdapter
    const encoder = new TextEncoder()
    const decoder = new TextDecoder()

    return ByokStore.of({
      put: (orgId, provider, input) =>
        Effect.gen(function*() {
          const plaintext = Redacted.value(input.apiKey)
          const envelope = yield* secrets.encrypt(orgId, encoder.encode(plaintext), contextOf(orgId, provider))
          const keyId = yield* envelopeKeyId(envelope).pipe(Effect.orDie)
          const row = yield* rows.upsert({
            orgId,
            provider,
            envelope,
            keyId,
            last4: plaintext.slice(-4),
            fingerprint: fingerprintOf(plaintext),
            baseUrl: input.baseUrl
          })
          return metadataOf(row)
        }),
      list: (orgId) => Effect.map(rows.list(orgId), (all) => all.map(metadataOf)),
      get: (orgId, provider) =>
        Effect.flatMap(rows.get(orgId, provider), (row) => row === undefined ? Effect.fail(notFound(provider)) : Effect.succeed(metadataOf(row))),
      remove: (orgId, provider) =>
        Effect.flatMap(rows.remove(orgId, provider), (removed) => removed ? Effect.void : Effect.fail(notFound(provider))),
      reveal: (orgId, provider) =>
        Effect.gen(function*() {
          const row = yield* rows.get(orgId, provider)
          if (row === undefined) return yield* notFound(provider)
          const plaintext = yield* secrets.decrypt(orgId, row.envelope, contextOf(orgId, provider))
          return { apiKey: Redacted.make(decoder.decode(plaintext)), baseUrl: row.baseUrl }
        }),
      setHealth: (orgId, provider, health) => Effect.asVoid(rows.setHealth(orgId, provider, health)),
      rewrap: Effect.gen(function*() {
        let rewrapped = 0
        let failed = 0
        const skipped = new Set<string>()
        while (true) {
          const current = (yield* secrets.dataKeyFor("rewrap-probe")).keyId
          const batch = (yield* rows.sealedWithOtherThan(current, 100 + skipped.size))
            .filter((row) => !skipped.has(`${row.orgId}\u0000${row.provider}`))
          if (batch.length === 0) return { rewrapped, failed }
          for (const row of batch) {
            const context = contextOf(row.orgId, row.provider)
            const opened = yield* secrets.decrypt(row.orgId, row.envelope, context).pipe(
              Effect.catchTag("SecretRevealFailed", () => Effect.succeed(undefined))
            )
            if (opened === undefined) {
              failed += 1
              skipped.add(`${row.orgId}\u0000${row.provider}`)
              continue
            }
            const envelope = yield* secrets.encrypt(row.orgId, opened, context)
            opened.fill(0)
            const keyId = yield* envelopeKeyId(envelope).pipe(Effect.orDie)
            if (yield* rows.replaceEnvelope(row, envelope, keyId)) rewrapped += 1
          }
        }
      })
    })
  })

/** Rows in a map, for tests and the memory control plane. */
export const memoryRows = (): ByokRows => {
  const rows = new Map<string, ByokRow>()
  const keyOf = (orgId: string, provider: string) => `${orgId}\u0000${provider}`
  return {
    upsert: (row) =>
      Effect.sync(() => {
        const stored: ByokRow = { ...row, health: "unknown", updatedAt: new Date() }
        rows.set(keyOf(row.orgId, row.provider), stored)
        return stored
      }),
    get: (orgId, provider) => Effect.sync(() => rows.get(keyOf(orgId, provider))),
    list: (orgId) =>
      Effect.sync(() => [...rows.values()].filter((row) => row.orgId === orgId).sort((a, b) => a.provider.localeCompare(b.provider))),
    remove: (orgId, provider) => Effect.sync(() => rows.delete(keyOf(orgId, provider))),
    setHealth: (orgId, provider, health) =>
      Effect.sync(() => {
        const row = rows.get(keyOf(orgId, provider))
        if (row === undefined) return false
        rows.set(keyOf(orgId, provider), { ...row, health })
        return true
      }),
    sealedWithOtherThan: (keyId, limit) =>
      Effect.sync(() => [...rows.values()].filter((row) => row.keyId !== keyId).slice(0, limit)),
    replaceEnvelope: (row, envelope, keyId) =>
      Effect.sync(() => {
        const current = rows.get(keyOf(row.orgId, row.provider))
        if (current === undefined || current.envelope !== row.envelope) return false
        rows.set(keyOf(row.orgId, row.provider), { ...current, envelope, keyId })
        return true
      })
  }
}
