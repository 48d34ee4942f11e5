import { type ByokRows, makeByokStore, makeKeyringSecretAdapter, SecretAdapter } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"

/**
 * What every ByokStore does, run against the in-memory rows and the Postgres ones: metadata-only reads (last four,
 * fingerprint, health), the plaintext only through `reveal`, tenant isolation (another org's key is NotFound on
 * every operation), replace and delete, and a KEK rotation: envelopes sealed under the old master key keep
 * opening while the new key seals, `rewrap` moves them to the new key, and then the old key can go.
 * `stored` dumps what the storage keeps so the plaintext can be checked to appear nowhere.
 */

const masterKey = () => Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
const adapter = (...ring: Array<Redacted.Redacted<Uint8Array>>) => makeKeyringSecretAdapter(Effect.succeed(ring))

export const byokStoreContract = <E, R>(
  name: string,
  dependencies: Layer.Layer<R, E>,
  rows: Effect.Effect<ByokRows, never, R>,
  createOrg: Effect.Effect<string, never, R>,
  stored: Effect.Effect<string, never, R>
) =>
  layer(dependencies, { timeout: 60_000 })(`ByokStore contract: ${name}`, (it) => {
    it.effect("reads are metadata only; reveal gives the key back; another org sees nothing", () =>
      Effect.gen(function*() {
        const storage = yield* rows
        const store = yield* makeByokStore(storage).pipe(Effect.provideService(SecretAdapter, adapter(masterKey())))
        const org = yield* createOrg
        const other = yield* createOrg
        const plaintext = `sk-canary-${Crypto.randomBytes(12).toString("hex")}`

        const written = yield* store.put(org, "openai", { apiKey: Redacted.make(plaintext), baseUrl: "http://127.0.0.1:9/v1" })
        assert.deepStrictEqual(Object.keys(written).sort(), ["fingerprint", "health", "last4", "provider", "status", "updatedAt"])
        assert.strictEqual(written.provider, "openai")
        assert.strictEqual(written.last4, plaintext.slice(-4))
        assert.match(written.fingerprint, /^sha256:[0-9a-f]{16}$/)
        assert.strictEqual(written.health, "unknown")
        const listed = yield* store.list(org)
        assert.deepStrictEqual(listed, [written])
        assert.notInclude(JSON.stringify(listed), plaintext.slice(0, 20))
        assert.notInclude(yield* stored, plaintext.slice(0, 20))

        const revealed = yield* store.reveal(org, "openai")
        assert.strictEqual(Redacted.value(revealed.apiKey), plaintext)
        assert.strictEqual(revealed.baseUrl, "http://127.0.0.1:9/v1")
        assert.notInclude(String(revealed.apiKey), plaintext)

        assert.deepStrictEqual(yield* store.list(other), [])
        assert.strictEqual((yield* Effect.flip(store.get(other, "openai")))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(store.reveal(other, "openai")))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(store.remove(other, "openai")))._tag, "NotFound")

        yield* store.setHealth(org, "openai", "ok")
        assert.strictEqual((yield* store.get(org, "openai")).health, "ok")

        const replaced = yield* store.put(org, "openai", { apiKey: Redacted.make(`${plaintext}-2`) })
        assert.notStrictEqual(replaced.fingerprint, written.fingerprint)
        assert.strictEqual(replaced.health, "unknown", "a new key's health is not the old key's")
        assert.strictEqual((yield* store.reveal(org, "openai")).baseUrl, undefined)

        yield* store.remove(org, "openai")
        assert.deepStrictEqual(yield* store.list(org), [])
        assert.strictEqual((yield* Effect.flip(store.reveal(org, "openai")))._tag, "NotFound")
      }))

    it.effect("KEK rotation: old envelopes stay readable, rewrap moves them to the new key, then the old key can go", () =>
      Effect.gen(function*() {
        const storage = yield* rows
        const oldKey = masterKey()
        const newKey = masterKey()
        const org = yield* createOrg
        const before = yield* makeByokStore(storage).pipe(Effect.provideService(SecretAdapter, adapter(oldKey)))
        yield* before.put(org, "openai", { apiKey: Redacted.make("sk-old-openai-0001") })
        yield* before.put(org, "anthropic", { apiKey: Redacted.make("sk-old-anthropic-0002") })

        const rotated = yield* makeByokStore(storage).pipe(Effect.provideService(SecretAdapter, adapter(newKey, oldKey)))
        assert.strictEqual(Redacted.value((yield* rotated.reveal(org, "openai")).apiKey), "sk-old-openai-0001")
        yield* rotated.put(org, "mistral", { apiKey: Redacted.make("sk-new-mistral-0003") })

        // Without the old key, the old envelopes do not open (they name it), the new one does.
        const newOnly = yield* makeByokStore(storage).pipe(Effect.provideService(SecretAdapter, adapter(newKey)))
        const refused = yield* Effect.flip(newOnly.reveal(org, "openai"))
        assert.strictEqual(refused._tag, "SecretRevealFailed")
        assert.strictEqual(refused._tag === "SecretRevealFailed" ? refused.reason : undefined, "unknown_key")
        assert.strictEqual(Redacted.value((yield* newOnly.reveal(org, "mistral")).apiKey), "sk-new-mistral-0003")

        const result = yield* rotated.rewrap
        assert.isAtLeast(result.rewrapped, 2)
        assert.strictEqual(result.failed, 0)
        assert.strictEqual(Redacted.value((yield* newOnly.reveal(org, "openai")).apiKey), "sk-old-openai-0001")
        assert.strictEqual(Redacted.value((yield* newOnly.reveal(org, "anthropic")).apiKey), "sk-old-anthropic-0002")
        assert.deepStrictEqual(yield* rotated.rewrap, { rewrapped: 0, failed: 0 })
      }))
  })
