import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { SecretAdapter } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const tempDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-secrets-"))
const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

const useAdapter = Effect.gen(function*() {
  const adapter = yield* SecretAdapter
  return yield* adapter.dataKeyFor("org_a")
})

const failureOf = <A, E>(exit: Exit.Exit<A, E>) => {
  assert.isTrue(Exit.isFailure(exit))
  return Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error : undefined
}

describe("LocalKeyFileSecretAdapter", () => {
  it.effect("creates the key file 0600 on first use and round-trips an envelope through a second adapter", () =>
    Effect.gen(function*() {
      const path = Path.join(tempDir(), "nested", "secret.key")
      const first = LocalKeyFileSecretAdapter.make(path)
      assert.isFalse(Fs.existsSync(path))
      const sealed = yield* first.encrypt("org_a", bytes("checkpoint bytes"), "ctx")
      assert.strictEqual(Fs.statSync(path).mode & 0o777, 0o600)
      assert.notInclude(Buffer.from(sealed).toString("latin1"), "checkpoint bytes")

      const restarted = LocalKeyFileSecretAdapter.make(path)
      assert.strictEqual(text(yield* restarted.decrypt("org_a", sealed, "ctx")), "checkpoint bytes")
    }))

  it.effect("a flipped bit, a truncation, or another context fails with SecretRevealFailed", () =>
    Effect.gen(function*() {
      const adapter = LocalKeyFileSecretAdapter.make(Path.join(tempDir(), "secret.key"))
      const sealed = yield* adapter.encrypt("org_a", bytes("hello"), "ctx")
      for (const index of [0, 1, 10, 25, sealed.byteLength - 1]) {
        const tampered = sealed.slice()
        tampered[index] = tampered[index]! ^ 0x01
        const error = failureOf(yield* Effect.exit(adapter.decrypt("org_a", tampered, "ctx")))
        assert.strictEqual(error?._tag, "SecretRevealFailed", `byte ${index}`)
      }
      const truncated = failureOf(yield* Effect.exit(adapter.decrypt("org_a", sealed.subarray(0, 20), "ctx")))
      assert.deepInclude(truncated, { _tag: "SecretRevealFailed", reason: "malformed" })
      const moved = failureOf(yield* Effect.exit(adapter.decrypt("org_a", sealed, "other")))
      assert.deepInclude(moved, { _tag: "SecretRevealFailed", reason: "authentication_failed" })
    }))

  it.effect("orgs get different data keys and cannot open each other's envelopes", () =>
    Effect.gen(function*() {
      const adapter = LocalKeyFileSecretAdapter.make(Path.join(tempDir(), "secret.key"))
      const keyA = yield* adapter.dataKeyFor("org_a")
      const keyB = yield* adapter.dataKeyFor("org_b")
      assert.strictEqual(keyA.keyId, keyB.keyId)
      assert.notDeepEqual(Redacted.value(keyA.key), Redacted.value(keyB.key))
      assert.notInclude(String(keyA.key), Buffer.from(Redacted.value(keyA.key)).toString("base64"))

      const sealed = yield* adapter.encrypt("org_a", bytes("private"))
      const error = failureOf(yield* Effect.exit(adapter.decrypt("org_b", sealed)))
      assert.deepInclude(error, { _tag: "SecretRevealFailed", reason: "authentication_failed" })
    }))

  it.effect("another key file cannot open the envelope (unknown key id)", () =>
    Effect.gen(function*() {
      const sealed = yield* LocalKeyFileSecretAdapter.make(Path.join(tempDir(), "a.key")).encrypt("org_a", bytes("x"))
      const other = LocalKeyFileSecretAdapter.make(Path.join(tempDir(), "b.key"))
      const error = failureOf(yield* Effect.exit(other.decrypt("org_a", sealed)))
      assert.deepInclude(error, { _tag: "SecretRevealFailed", reason: "unknown_key" })
    }))

  it.effect("a malformed key file is SecretAdapterUnavailable and its content is never echoed", () =>
    Effect.gen(function*() {
      const path = Path.join(tempDir(), "secret.key")
      Fs.writeFileSync(path, "not-a-key-canary", { mode: 0o600 })
      const error = failureOf(yield* Effect.exit(LocalKeyFileSecretAdapter.make(path).encrypt("org_a", bytes("x"))))
      assert.strictEqual(error?._tag, "SecretAdapterUnavailable")
      assert.notInclude(JSON.stringify(error), "canary")
    }))

  it.effect("layerConfig reads OPEN_COWORK_CLOUD_SECRET_KEY_REF, else <OPEN_COWORK_DATA_DIR>/secret.key", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const viaDataDir = LocalKeyFileSecretAdapter.layerConfig.pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_DATA_DIR: dir })))
      )
      yield* useAdapter.pipe(Effect.provide(viaDataDir))
      assert.isTrue(Fs.existsSync(Path.join(dir, "secret.key")))

      const refPath = Path.join(dir, "ref", "master.key")
      const viaRef = LocalKeyFileSecretAdapter.layerConfig.pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_SECRET_KEY_REF: `file:${refPath}` })))
      )
      yield* useAdapter.pipe(Effect.provide(viaRef))
      assert.isTrue(Fs.existsSync(refPath))

      const relative = LocalKeyFileSecretAdapter.layerConfig.pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_SECRET_KEY_REF: "file:relative.key" })))
      )
      const exit = yield* Effect.exit(Effect.provide(useAdapter, relative))
      assert.isTrue(Exit.isFailure(exit))
    }))
})
