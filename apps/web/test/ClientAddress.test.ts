import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import type { HttpServerRequest } from "effect/http"
import { clientAddress, parseTrustedProxies } from "../src/ClientAddress.ts"

const requestFrom = (peer: string, forwardedFor?: string) =>
  ({
    remoteAddress: Option.some(peer),
    headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor }
  }) as unknown as HttpServerRequest.HttpServerRequest

describe("client address through trusted proxies", () => {
  const trusted = parseTrustedProxies("10.0.0.0/8, 192.168.1.7, fd00::/8")!

  it("without trusted proxies the socket peer is the client, whatever X-Forwarded-For says", () => {
    assert.strictEqual(clientAddress(requestFrom("10.1.2.3", "203.0.113.9"), undefined), "10.1.2.3")
    assert.strictEqual(clientAddress(requestFrom("::ffff:198.51.100.4"), undefined), "198.51.100.4")
  })

  it("an untrusted peer's X-Forwarded-For is ignored: a client cannot choose its address", () => {
    assert.strictEqual(clientAddress(requestFrom("198.51.100.4", "203.0.113.9"), trusted), "198.51.100.4")
  })

  it("through trusted proxies, the rightmost address no trusted proxy vouches for is the client", () => {
    assert.strictEqual(clientAddress(requestFrom("10.0.0.5", "203.0.113.9"), trusted), "203.0.113.9")
    // A forged left part is not believed: the trusted hops are skipped from the right only.
    assert.strictEqual(clientAddress(requestFrom("10.0.0.5", "1.1.1.1, 203.0.113.9, 192.168.1.7"), trusted), "203.0.113.9")
    assert.strictEqual(clientAddress(requestFrom("::ffff:10.0.0.5", "2001:db8::1"), trusted), "2001:db8::1")
    assert.strictEqual(clientAddress(requestFrom("fd00::1", "203.0.113.9"), trusted), "203.0.113.9")
  })

  it("a trusted peer without a usable header stays the address; garbage stops the walk", () => {
    assert.strictEqual(clientAddress(requestFrom("10.0.0.5"), trusted), "10.0.0.5")
    assert.strictEqual(clientAddress(requestFrom("10.0.0.5", "not-an-ip"), trusted), "10.0.0.5")
    assert.strictEqual(clientAddress(requestFrom("10.0.0.5", "203.0.113.9, junk, 10.0.0.6"), trusted), "10.0.0.6")
  })

  it("a malformed list is refused", () => {
    assert.isUndefined(parseTrustedProxies("10.0.0.0/33"))
    assert.isUndefined(parseTrustedProxies("proxy.internal"))
    assert.isDefined(parseTrustedProxies(""))
  })
})
