import { assert, describe, it } from "@effect/vitest"
import { newOrgId } from "../src/Ids.ts"
import { CREDENTIAL_ENV_PREFIX, orgCredentialEnvPrefix, orgCredentialKey, orgCredentialRef } from "../src/CredentialNamespace.ts"

/** Inverse of orgCredentialKey: decoding it back is what makes the encoding injective. */
const decode = (key: string): string => {
  const bytes: Array<number> = []
  for (let i = 0; i < key.length;) {
    const char = key[i]!
    if (char === "_") {
      bytes.push(Number.parseInt(key.slice(i + 1, i + 3), 16))
      i += 3
    } else {
      bytes.push(/[A-Z]/.test(char) ? char.toLowerCase().charCodeAt(0) : char.charCodeAt(0))
      i += 1
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes))
}

const TRICKY = [
  "abc", "abc_", "abc_5f", "abc_5F", "ABC", "Abc", "abc-", "abc.", "abc__x", "abc_x", "abc_5fx", "abc5f", "a_bc", "a-bc", "a.bc",
  "org_0mx3ur2k8c1f0a", "org-0mx3ur2k8c1f0a", "org_0MX3UR2K8C1F0A", "ünïcødé", "𝄞", "0", "_", "__", "-", "x y", "x\u0000y", "",
  ...Array.from({ length: 500 }, () => newOrgId())
]

describe("the per-org credential namespace", () => {
  it("encodes org ids injectively into environment-name characters, never with `__` or a trailing `_`", () => {
    for (const orgId of TRICKY) {
      const key = orgCredentialKey(orgId)
      assert.match(key, /^[A-Z0-9_]*$/, orgId)
      assert.notInclude(key, "__", orgId)
      assert.isFalse(key.endsWith("_"), orgId)
      assert.strictEqual(decode(key), orgId, "decodes back")
    }
    assert.strictEqual(new Set(TRICKY.map(orgCredentialKey)).size, new Set(TRICKY).size, "no two orgs share a key")
    assert.strictEqual(orgCredentialEnvPrefix("org_abc"), `${CREDENTIAL_ENV_PREFIX}ORG_5FABC__`)
  })

  it("no org's prefix is a prefix of another org's: one namespace never reaches into another", () => {
    const prefixes = [...new Set(TRICKY)].map(orgCredentialEnvPrefix).sort()
    // Sorted, a string with a prefix among the others sits right after it: adjacent pairs are enough.
    for (let i = 1; i < prefixes.length; i++) assert.isFalse(prefixes[i]!.startsWith(prefixes[i - 1]!), `${prefixes[i - 1]} / ${prefixes[i]}`)
    // The case that made the terminator necessary: org `abc` and org `abc_5fx` (a single `_` separator would collide).
    assert.isFalse(orgCredentialEnvPrefix("abc_x").startsWith(orgCredentialEnvPrefix("abc")))
    const mine = orgCredentialRef(`env:${orgCredentialEnvPrefix("abc_x")}TOKEN`, "abc")
    assert.strictEqual(mine._tag, "Refused")
  })

  it("admits the org's own env: and plain file: references and refuses every other (the reason never carries the reference)", () => {
    const orgId = "org_a1"
    assert.deepStrictEqual(orgCredentialRef(`env:${orgCredentialEnvPrefix(orgId)}TG`, orgId), { _tag: "Env", name: `${orgCredentialEnvPrefix(orgId)}TG` })
    assert.deepStrictEqual(orgCredentialRef("file:tg-bot.token", orgId), { _tag: "File", directory: orgId, name: "tg-bot.token" })
    const refused = [
      `env:${orgCredentialEnvPrefix("org_b1")}TG`,
      `env:${orgCredentialEnvPrefix(orgId)}`,
      "env:OPEN_COWORK_GATEWAY_TOKEN",
      "env:OPEN_COWORK_GATEWAY_CRED_ORG_5FA1_TG",
      "file:/etc/passwd",
      "file:///run/secrets/x",
      "file:../org_b1/tg",
      "file:..",
      "file:.",
      "file:.hidden",
      "file:a/b",
      "file:a\u0000b",
      "file:",
      "vault://kv/x",
      "canary-plaintext-credential"
    ]
    for (const ref of refused) {
      const checked = orgCredentialRef(ref, orgId)
      assert.strictEqual(checked._tag, "Refused", ref)
      // (The bare own prefix is the one refusal whose reason shows it: the reason names the org's prefix.)
      if (checked._tag === "Refused" && ref !== `env:${orgCredentialEnvPrefix(orgId)}`) assert.notInclude(checked.reason, ref.slice(ref.indexOf(":") + 1) || "\u0001", ref)
    }
    // An org id that cannot be a directory name: file: references are refused for it, env: ones still work.
    assert.strictEqual(orgCredentialRef("file:tg", "..")._tag, "Refused")
    assert.strictEqual(orgCredentialRef("file:tg", "a/b")._tag, "Refused")
    assert.strictEqual(orgCredentialRef(`env:${orgCredentialEnvPrefix("a/b")}TG`, "a/b")._tag, "Env")
  })
})
