import { Option } from "effect"
import type { HttpServerRequest } from "effect/http"
import * as Net from "node:net"

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is `10.0.0.1`. */
const normalize = (address: string): string => {
  const trimmed = address.trim()
  return trimmed.toLowerCase().startsWith("::ffff:") && Net.isIPv4(trimmed.slice(7)) ? trimmed.slice(7) : trimmed
}

/**
 * The proxies trusted to report the client address (`OPEN_COWORK_CLOUD_TRUSTED_PROXIES`: comma-separated addresses and
 * CIDR ranges, IPv4 or IPv6). `undefined` for an entry that is neither, so a typo fails the start.
 */
export const parseTrustedProxies = (raw: string): Net.BlockList | undefined => {
  const list = new Net.BlockList()
  for (const entry of raw.split(",").map((part) => part.trim()).filter((part) => part !== "")) {
    const [address, prefix, ...rest] = entry.split("/")
    const family = Net.isIP(address ?? "")
    if (family === 0 || rest.length > 0) return undefined
    const type = family === 4 ? "ipv4" : "ipv6"
    if (prefix === undefined) {
      list.addAddress(address!, type)
      continue
    }
    const bits = Number(prefix)
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return undefined
    list.addSubnet(address!, bits, type)
  }
  return list
}

const trustedBy = (list: Net.BlockList, address: string): boolean => {
  const family = Net.isIP(address)
  return family !== 0 && list.check(address, family === 4 ? "ipv4" : "ipv6")
}

/**
 * The client's address: the socket's peer, unless that peer is a trusted proxy — then `X-Forwarded-For` is read from
 * the right, skipping trusted proxies, and the first address no trusted proxy vouches for is the client. Entries left
 * of it are whatever the client sent and are ignored, so a client cannot pick the address it is limited under.
 */
export const clientAddress = (request: HttpServerRequest.HttpServerRequest, trusted: Net.BlockList | undefined): string => {
  const peer = normalize(Option.getOrElse(request.remoteAddress ?? Option.none(), () => "unknown"))
  if (trusted === undefined || !trustedBy(trusted, peer)) return peer
  const forwarded = (request.headers["x-forwarded-for"] ?? "").split(",").map(normalize).filter((hop) => hop !== "")
  let client = peer
  for (let i = forwarded.length - 1; i >= 0; i--) {
    const hop = forwarded[i]!
    if (Net.isIP(hop) === 0) return client
    client = hop
    if (!trustedBy(trusted, hop)) return client
  }
  return client
}
