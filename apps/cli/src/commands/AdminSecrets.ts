import { PgByokStore } from "@cowork/postgres"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { makeByokStore, SecretAdapter } from "@cowork/services"
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { printJson } from "./AdminRegistry.ts"

/**
 * KEK rotation for the local key file: a new master key seals from now on, the old ones stay in the file so every
 * envelope sealed under them (checkpoints, BYOK keys) keeps opening; then the org provider keys in
 * `cloud_byok_keys` are rewrapped under the new key. Prints key ids and counts, never a key.
 */
const rotateKek = (keyFilePath: string, options: { readonly rewrap: boolean }) =>
  Effect.gen(function*() {
    const rotated = yield* LocalKeyFileSecretAdapter.rotateKeyFile(keyFilePath)
    if (!options.rewrap) return { ...rotated, byok: { rewrapped: 0, failed: 0 } }
    const rows = yield* PgByokStore.rows
    const store = yield* makeByokStore(rows).pipe(
      Effect.provideService(SecretAdapter, LocalKeyFileSecretAdapter.make(keyFilePath))
    )
    return { ...rotated, byok: yield* store.rewrap }
  })

const rotateKekCommand = Command.make("rotate-kek", {
  noRewrap: Flag.Boolean("no-rewrap").pipe(
    Flag.withDescription("Only rotate the key file; leave BYOK envelopes under their old key"),
    Flag.withDefault(false)
  )
}, ({ noRewrap }) =>
  Effect.gen(function*() {
    const path = yield* LocalKeyFileSecretAdapter.keyFilePathConfig
    yield* printJson(yield* rotateKek(path, { rewrap: !noRewrap }))
  })).pipe(
    Command.withDescription(
      "New master key (KEK) in the key file, old keys kept for reading; rewraps BYOK keys. Restart every role afterwards so they seal with the new key."
    )
  )

export const command = Command.make("secrets").pipe(
  Command.withDescription("Envelope keys: rotation"),
  Command.withSubcommands([rotateKekCommand])
)
