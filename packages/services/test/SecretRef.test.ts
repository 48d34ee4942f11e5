import { orgCredentialEnvPrefix } from "@cowork/domain"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { resolveOrgSecretRef, resolveSecretRef, resolveSecretRefConfig, SecretRefError } from "../src/SecretRef.ts"

const CANARY = "canary-secret-ref-value"

describe("secret references (one resolver for every role)", () => {
  it("resolves env:NAME and file:/absolute/path (trimmed); refuses inline values, relative paths, unset and empty ones without the value", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "secret-ref-"))
    try {
      Fs.writeFileSync(Path.join(dir, "s"), `${CANARY}\n`)
      Fs.writeFileSync(Path.join(dir, "empty"), "\n")
      assert.strictEqual(resolveSecretRef("env:S", "F", { S: ` ${CANARY} ` }), CANARY)
      assert.strictEqual(resolveSecretRef(`file:${dir}/s`, "F", {}), CANARY)
      assert.strictEqual(resolveSecretRef(`file://${dir}/s`, "F", {}), CANARY)
      for (const [ref, fragment] of [
        [CANARY, "never inline"],
        ["env:UNSET", "UNSET is not set"],
        ["file:relative/s", "absolute path"],
        [`file:${dir}/missing`, "cannot read"],
        [`file:${dir}/empty`, "is empty"]
      ] as const) {
        assert.throws(() => resolveSecretRef(ref, "THE_FIELD", {}), SecretRefError, fragment)
        try {
          resolveSecretRef(ref, "THE_FIELD", {})
        } catch (error) {
          assert.include((error as Error).message, "THE_FIELD")
          assert.notInclude((error as Error).message, CANARY)
        }
      }
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it.effect("resolveSecretRefConfig reads env: through the ConfigProvider and fails as a ConfigError naming the field", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromUnknown({ MY_SECRET: CANARY })
      const value = yield* resolveSecretRefConfig("env:MY_SECRET", "X_SECRET_REF").pipe(Effect.provide(ConfigProvider.layer(provider)))
      assert.strictEqual(Redacted.value(value), CANARY)
      const missing = yield* Effect.exit(resolveSecretRefConfig("env:NOT_THERE", "X_SECRET_REF").pipe(Effect.provide(ConfigProvider.layer(provider))))
      assert.isTrue(Exit.isFailure(missing))
      assert.include(String(missing), "X_SECRET_REF")
      assert.notInclude(String(missing), CANARY)
    }))

  it("an org's reference resolves only in its namespace: its env prefix, its directory; everything else refused before anything is read", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "org-secret-ref-"))
    try {
      const [orgA, orgB] = ["org_a1", "org_b1"]
      for (const org of [orgA, orgB]) Fs.mkdirSync(Path.join(dir, org))
      Fs.writeFileSync(Path.join(dir, orgA, "tg"), "a-file-credential\n")
      Fs.writeFileSync(Path.join(dir, orgB, "tg"), `${CANARY}-b-file\n`)
      Fs.writeFileSync(Path.join(dir, "outside"), `${CANARY}-outside\n`)
      const env = {
        [`${orgCredentialEnvPrefix(orgA)}TG`]: "a-env-credential",
        [`${orgCredentialEnvPrefix(orgB)}TG`]: `${CANARY}-b-env`,
        OPEN_COWORK_GATEWAY_TOKEN: `${CANARY}-gateway-token`
      }
      const options = { env, credentialsDir: dir }
      assert.strictEqual(resolveOrgSecretRef(`env:${orgCredentialEnvPrefix(orgA)}TG`, orgA, "F", options), "a-env-credential")
      assert.strictEqual(resolveOrgSecretRef("file:tg", orgA, "F", options), "a-file-credential")
      assert.strictEqual(resolveOrgSecretRef("file:tg", orgB, "F", options), `${CANARY}-b-file`, "the same name in org B's directory is B's")
      for (const ref of [
        `env:${orgCredentialEnvPrefix(orgB)}TG`,
        "env:OPEN_COWORK_GATEWAY_TOKEN",
        `file:${dir}/${orgB}/tg`,
        `file:${dir}/outside`,
        `file:../${orgB}/tg`,
        "file:../outside",
        "file:.."
      ]) {
        assert.throws(() => resolveOrgSecretRef(ref, orgA, "credentialRef of binding chb_1", options), SecretRefError, "refused", ref)
        try {
          resolveOrgSecretRef(ref, orgA, "credentialRef of binding chb_1", options)
        } catch (error) {
          assert.notInclude((error as Error).message, CANARY, ref)
        }
      }
      assert.throws(() => resolveOrgSecretRef("file:tg", orgA, "F", { env, credentialsDir: undefined }), SecretRefError, "OPEN_COWORK_GATEWAY_CREDENTIALS_DIR")
      assert.throws(() => resolveOrgSecretRef(`env:${orgCredentialEnvPrefix(orgA)}UNSET`, orgA, "F", options), SecretRefError, "is not set")
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
