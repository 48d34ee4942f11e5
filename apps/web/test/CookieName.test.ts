import { assert, describe, it } from "@effect/vitest"
import { cookieNameFor, isLoopbackHttp } from "../src/AuthSettings.ts"

describe("session cookie name and Secure by public URL", () => {
  it("__Host- only on https; plain on http (Secure everywhere but loopback http)", () => {
    assert.strictEqual(cookieNameFor(new URL("https://cowork.example.com")), "__Host-cowork_session")
    assert.strictEqual(cookieNameFor(new URL("http://127.0.0.1:8787")), "cowork_session")
    assert.strictEqual(cookieNameFor(new URL("http://localhost:8787")), "cowork_session")
    assert.strictEqual(cookieNameFor(new URL("http://cowork.internal:8787")), "cowork_session", "a __Host- cookie needs https")
    assert.isTrue(isLoopbackHttp(new URL("http://[::1]:8787")))
    assert.isFalse(isLoopbackHttp(new URL("http://cowork.internal:8787")), "so its cookie stays Secure")
  })
})
