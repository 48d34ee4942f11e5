import { assert, describe, it } from "@effect/vitest"
import { fromBase64Url, toBase64Url } from "../src/Base64Url.ts"
import { decodeSessionCursor, encodeSessionCursor } from "../src/Input.ts"

describe("base64url without Buffer (cursors are checked in the browser too)", () => {
  it("encodes exactly as Node's base64url and decodes back", () => {
    for (const text of ["", "a", "ab", "abc", "ses_0mx3j9jjzc2feb62a18224688", '["2026-11-30T17:00:00.123456","art_1"]', "ünïcødé ✓ 𝄞", "\u00ff\u0000?>"]) {
      assert.strictEqual(toBase64Url(text), Buffer.from(text, "utf8").toString("base64url"), text)
      assert.strictEqual(fromBase64Url(toBase64Url(text)), text)
    }
  })

  it("refuses what is not base64url", () => {
    for (const bad of ["a", "ab+c", "ab/c", "abc=", "a b", "!!!!"]) assert.isUndefined(fromBase64Url(bad), bad)
    assert.isUndefined(decodeSessionCursor("%%%"))
    assert.strictEqual(decodeSessionCursor(encodeSessionCursor("ses_abc")), "ses_abc")
  })
})
