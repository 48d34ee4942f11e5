import { ProviderAddress } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** Which addresses an org's model provider URL may reach, and the lookup that pins a connection to the checked one. */

describe("ProviderAddress", () => {
  it("classifies every non-public range and lets public addresses through", () => {
    const refused: ReadonlyArray<readonly [string, string]> = [
      ["127.0.0.1", "loopback"], ["127.200.0.9", "loopback"], ["::1", "loopback"],
      ["10.1.2.3", "private"], ["172.16.0.1", "private"], ["172.31.255.255", "private"], ["192.168.1.1", "private"],
      ["fc00::1", "private"], ["fd12:3456::1", "private"],
      ["169.254.169.254", "link-local"], ["fe80::1", "link-local"],
      ["100.64.0.1", "shared (CGNAT)"], ["100.127.255.254", "shared (CGNAT)"],
      ["224.0.0.1", "multicast"], ["239.255.255.250", "multicast"], ["ff02::1", "multicast"],
      ["0.0.0.0", "unspecified"], ["::", "unspecified"],
      ["255.255.255.255", "reserved"],
      // IPv4 inside IPv6 is checked as the IPv4 address it carries.
      ["::ffff:127.0.0.1", "loopback"], ["::ffff:7f00:1", "loopback"], ["::ffff:10.0.0.1", "private"], ["64:ff9b::a9fe:a9fe", "link-local"]
    ]
    for (const [address, range] of refused) assert.strictEqual(ProviderAddress.refusedRange(address), range, address)
    for (const address of ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::6810:85e5", "::ffff:8.8.8.8", "64:ff9b::808:808"]) {
      assert.isUndefined(ProviderAddress.refusedRange(address), address)
    }
  })

  it("unpacks the IPv4 address that 6to4, Teredo, NAT64 (well-known and local-use), IPv4-compatible and -translated addresses carry, and checks it", () => {
    const refused: ReadonlyArray<readonly [string, string]> = [
      // 6to4 (2002::/16): the IPv4 address is the next 32 bits.
      ["2002:7f00:0001::", "loopback"], ["2002:7f00:1::1", "loopback"], ["2002:a00:1:1::5", "private"],
      ["2002:a9fe:a9fe::", "link-local"], ["2002:c0a8:0101:0:0:0:0:1", "private"], ["2002::", "unspecified"],
      // Teredo (2001:0::/32): the server's IPv4 address in bits 32-63, the client's inverted in the last 32 bits.
      ["2001:0:7f00:1::", "loopback"], ["2001:0:a00:1:0:0:f7f7:f7f7", "private"],
      ["2001:0:808:808:0:0:80ff:fefe", "loopback"], ["2001:0000:0808:0808:8000:0000:5601:5601", "link-local"],
      // NAT64 (64:ff9b::/96), in either notation.
      ["64:ff9b::7f00:1", "loopback"], ["64:ff9b::127.0.0.1", "loopback"], ["64:ff9b::192.168.0.1", "private"],
      ["64:ff9b:0:0:0:0:a00:1", "private"]
    ]
    for (const [address, range] of refused) assert.strictEqual(ProviderAddress.refusedRange(address), range, address)
    // Public IPv4 on both Teredo ends (8.8.8.8 server; 93.184.216.34 client, inverted) and in 6to4: allowed.
    for (const address of ["2002:808:808::1", "2002:5db8:d822::", "2001:0:808:808:0:0:a247:27dd", "64:ff9b::5db8:d822"]) {
      assert.isUndefined(ProviderAddress.refusedRange(address), address)
    }
    // Local-use NAT64 (64:ff9b:1::/48, RFC 8215): the operator's prefix is 48 to 96 bits, so every RFC 6052 layout the
    // address can be in is read; one non-public reading refuses it.
    const localNat64: ReadonlyArray<readonly [string, string]> = [
      ["64:ff9b:1::7f00:1", "loopback"], ["64:ff9b:1::10.0.0.1", "private"], ["64:ff9b:1:ffff::a9fe:a9fe", "link-local"],
      // /48 layout of 127.0.0.1 (bits 48-63 and 72-87), /64 layout of 10.0.0.1 (bits 72-103).
      ["64:ff9b:1:7f00:0:100::", "loopback"], ["64:ff9b:1:abcd:a:0:100:0", "private"],
      // IPv4-compatible (::a.b.c.d, deprecated) and IPv4-translated (::ffff:0:a.b.c.d).
      ["::127.0.0.1", "loopback"], ["::a9fe:a9fe", "link-local"], ["::10.0.0.1", "private"], ["::2", "unspecified"],
      ["::ffff:0:127.0.0.1", "loopback"], ["::ffff:0:a00:1", "private"]
    ]
    for (const [address, range] of localNat64) assert.strictEqual(ProviderAddress.refusedRange(address), range, address)
    for (const address of ["64:ff9b:1::808:808", "64:ff9b:1:abcd:8:808:800:0", "::8.8.8.8", "::ffff:0:8.8.8.8"]) {
      assert.isUndefined(ProviderAddress.refusedRange(address), address)
    }
    assert.strictEqual(ProviderAddress.refusedRange("::1"), "loopback")
    assert.strictEqual(ProviderAddress.refusedRange("::"), "unspecified")
    assert.strictEqual(
      ProviderAddress.literalRefusal("[64:ff9b:1::a9fe:a9fe]", ProviderAddress.parseAllowedHosts(""))?.range,
      "link-local",
      "the store-time check refuses a local-use NAT64 literal carrying the metadata address"
    )
    assert.strictEqual(
      ProviderAddress.literalRefusal("[2002:7f00:1::]", ProviderAddress.parseAllowedHosts(""))?.range,
      "loopback",
      "the store-time check refuses a 6to4 loopback literal"
    )
  })

  it.effect("checkHost resolves names first; the operator's allow-list (hostnames or IP literals) skips the check", () =>
    Effect.gen(function*() {
      const none = ProviderAddress.parseAllowedHosts("")
      const refusedName = yield* Effect.flip(ProviderAddress.checkHost("localhost", none))
      assert.strictEqual(refusedName.range, "loopback")
      assert.include(refusedName.message, "OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS")
      assert.strictEqual((yield* Effect.flip(ProviderAddress.checkHost("[::1]", none))).range, "loopback")
      assert.strictEqual((yield* Effect.flip(ProviderAddress.checkHost("no-such-host.invalid", none))).range, "unresolvable")
      const allowed = ProviderAddress.parseAllowedHosts(" LocalHost , [::1],127.0.0.1 ")
      assert.deepStrictEqual([...allowed], ["localhost", "::1", "127.0.0.1"])
      yield* ProviderAddress.checkHost("localhost", allowed)
      yield* ProviderAddress.checkHost("[::1]", allowed)
      assert.strictEqual((yield* Effect.flip(ProviderAddress.checkHost("10.0.0.1", allowed))).range, "private", "only the listed hosts")
    }))

  it.effect("a connection through guardedLookup never reaches a loopback server by name unless allowed", () =>
    Effect.gen(function*() {
      let connections = 0
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<Http.Server>((resolve) => {
            const s = Http.createServer((_req, res) => res.end("ok"))
            s.on("connection", () => connections++)
            s.listen(0, "127.0.0.1", () => resolve(s))
          })
        ),
        (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
      )
      const port = (server.address() as AddressInfo).port
      const get = (allowed: string) =>
        Effect.promise(() =>
          new Promise<{ readonly status?: number; readonly code?: string }>((resolve) => {
            const request = Http.get({
              host: "localhost",
              port,
              agent: false,
              family: 4,
              lookup: ProviderAddress.guardedLookup(ProviderAddress.parseAllowedHosts(allowed))
            } as Http.RequestOptions, (res) => {
              res.resume()
              resolve({ status: res.statusCode! })
            })
            request.on("error", (error: NodeJS.ErrnoException) => resolve({ code: error.code! }))
          })
        )
      assert.deepStrictEqual(yield* get(""), { code: ProviderAddress.REFUSED_CODE })
      assert.strictEqual(connections, 0, "the refused lookup opened no connection")
      assert.deepStrictEqual(yield* get("localhost"), { status: 200 })
      assert.strictEqual(connections, 1)
    }))
})
