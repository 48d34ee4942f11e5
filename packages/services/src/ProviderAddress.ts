import { Config, Data, Effect } from "effect"
import * as Dns from "node:dns"
import * as Net from "node:net"

/**
 * Which network addresses an org-supplied model provider URL (a BYOK `baseUrl`) may reach. The web role's validate
 * call and the worker's model proxy make requests to a URL an org chose, from inside the deployment's network: a
 * host that resolves to a loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10, cloud metadata),
 * shared (CGNAT 100.64/10), multicast, unspecified or reserved address is refused (an IPv6 address carrying an IPv4
 * one, IPv4-mapped, -translated or -compatible, NAT64 (well-known or local-use), 6to4 or Teredo, by the IPv4 address it
 * carries), unless the operator lists the host in `OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS` (comma-separated hostnames or
 * IP literals, e.g. a local model server).
 * The check runs inside the connection's own DNS lookup (`guardedLookup`), so the address connected to is the address
 * checked: a name that resolves differently the next time (DNS rebinding) cannot slip past it.
 */

export const ALLOWED_HOSTS_VARIABLE = "OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS"
/** The gateway's allow-list for outbound webhook targets (the same rule, another use). */
export const WEBHOOK_ALLOWED_HOSTS_VARIABLE = "OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS"

export class ProviderAddressRefused extends Data.TaggedError("ProviderAddressRefused")<{
  readonly host: string
  /** What kind of address it resolved to (`loopback`, `private`, …), or `unresolvable`. */
  readonly range: string
  /** The operator's allow-list variable for this use (default `OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS`). */
  readonly variable?: string | undefined
}> {
  override get message() {
    return this.range === "unresolvable"
      ? `the host ${this.host} could not be resolved`
      : `the host ${this.host} resolves to a ${this.range} address; it must be public (an operator can allow a host with ${this.variable ?? ALLOWED_HOSTS_VARIABLE})`
  }
}

/** The error code a refused connection fails with (the lookup's error), for callers that only see a Node error. */
export const REFUSED_CODE = "ERR_COWORK_PROVIDER_ADDRESS_REFUSED"

const normalizeHost = (host: string) => host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "")

export const parseAllowedHosts = (raw: string): ReadonlySet<string> =>
  new Set(raw.split(",").map(normalizeHost).filter((host) => host !== ""))

/** `OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS` (default: none). */
export const allowedHostsConfig: Config.Config<ReadonlySet<string>> = Config.String("OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS").pipe(
  Config.withDefault(""),
  Config.map(parseAllowedHosts)
)

const RANGES: ReadonlyArray<readonly [range: string, subnet: string, prefix: number, family: "ipv4" | "ipv6"]> = [
  ["unspecified", "0.0.0.0", 8, "ipv4"],
  ["private", "10.0.0.0", 8, "ipv4"],
  ["shared (CGNAT)", "100.64.0.0", 10, "ipv4"],
  ["loopback", "127.0.0.0", 8, "ipv4"],
  ["link-local", "169.254.0.0", 16, "ipv4"],
  ["private", "172.16.0.0", 12, "ipv4"],
  ["reserved", "192.0.0.0", 24, "ipv4"],
  ["private", "192.168.0.0", 16, "ipv4"],
  ["reserved", "198.18.0.0", 15, "ipv4"],
  ["multicast", "224.0.0.0", 4, "ipv4"],
  ["reserved", "240.0.0.0", 4, "ipv4"],
  ["unspecified", "::", 128, "ipv6"],
  ["loopback", "::1", 128, "ipv6"],
  // IPv4-mapped/-translated/-compatible, NAT64, 6to4 and Teredo addresses carry IPv4 addresses checked as such (`embeddedIpv4`).
  ["private", "fc00::", 7, "ipv6"],
  ["link-local", "fe80::", 10, "ipv6"],
  ["multicast", "ff00::", 8, "ipv6"]
]

const lists = RANGES.map(([range, subnet, prefix, family]) => {
  const list = new Net.BlockList()
  list.addSubnet(subnet, prefix, family)
  return { range, list, family }
})

/** The eight 16-bit words of an IPv6 literal (already known valid), a trailing dotted IPv4 part and a zone id allowed. */
const ipv6Words = (address: string): ReadonlyArray<number> => {
  let text = address.toLowerCase().replace(/%.*$/, "")
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const words = (part: string) => part === "" ? [] : part.split(":").map((word) => Number.parseInt(word, 16))
  const gap = text.indexOf("::")
  if (gap === -1) return words(text)
  const head = words(text.slice(0, gap))
  const tail = words(text.slice(gap + 2))
  return [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

const ipv4Of = (high: number, low: number) => [high >> 8, high & 255, low >> 8, low & 255].join(".")

/**
 * The readings of a local-use NAT64 address (`64:ff9b:1::/48`, RFC 8215): the operator picks a prefix of 48 to 96
 * bits inside it, which the address does not tell, so every RFC 6052 layout it can be in is read. A layout shorter than
 * /96 keeps bits 64-71 zero and its suffix (the bits after the IPv4 address) zero; /96 is always possible.
 */
const localNat64Ipv4 = (w: readonly [number, number, number, number, number, number, number, number]) => {
  const bits = (from: number, to: number) => {
    let value = 0
    for (let bit = from; bit < to; bit++) value = value * 2 + ((w[bit >> 4]! >> (15 - (bit & 15))) & 1)
    return value
  }
  const octets = (ranges: ReadonlyArray<readonly [number, number]>) => {
    const value = ranges.reduce((acc, [from, to]) => acc * 2 ** (to - from) + bits(from, to), 0)
    return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".")
  }
  const readings: Array<string> = []
  if (bits(64, 72) === 0) {
    // [prefix length, the IPv4 address's bits around the reserved octet, where the zero suffix starts]
    const layouts: ReadonlyArray<readonly [ReadonlyArray<readonly [number, number]>, number]> = [
      [[[48, 64], [72, 88]], 88],
      [[[56, 64], [72, 96]], 96],
      [[[72, 104]], 104]
    ]
    for (const [ranges, suffix] of layouts) {
      if (bits(suffix, 128) === 0) readings.push(octets(ranges))
    }
  }
  readings.push(octets([[96, 128]]))
  return readings
}

/**
 * The IPv4 addresses an IPv6 address carries, each reachable through it: IPv4-mapped (`::ffff:a.b.c.d`),
 * IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated; `::` and `::1` excepted), NAT64
 * (`64:ff9b::/96`, the last 32 bits; the local-use `64:ff9b:1::/48`, every layout it can be in), 6to4 (`2002::/16`,
 * bits 16-47) and Teredo (`2001:0::/32`: the server in bits 32-63, the client inverted in the last 32 bits). Empty for
 * any other address.
 */
const embeddedIpv4 = (address: string): ReadonlyArray<string> => {
  const w = ipv6Words(address) as [number, number, number, number, number, number, number, number]
  const zero = (from: number, to: number) => w.slice(from, to).every((word) => word === 0)
  if (zero(0, 5) && w[5] === 0xffff) return [ipv4Of(w[6], w[7])]
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return [ipv4Of(w[6], w[7])]
  if (zero(0, 6) && (w[6] !== 0 || w[7] > 1)) return [ipv4Of(w[6], w[7])]
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return [ipv4Of(w[6], w[7])]
  if (w[0] === 0x64 && w[1] === 0xff9b && w[2] === 1) return localNat64Ipv4(w)
  if (w[0] === 0x2002) return [ipv4Of(w[1], w[2])]
  if (w[0] === 0x2001 && w[1] === 0) return [ipv4Of(w[2], w[3]), ipv4Of(~w[6] & 0xffff, ~w[7] & 0xffff)]
  return []
}

/** The kind of non-public range `address` (an IP literal) is in, or `undefined` for a public address. */
export const refusedRange = (address: string): string | undefined => {
  const family = Net.isIP(address) === 6 ? "ipv6" : Net.isIP(address) === 4 ? "ipv4" : undefined
  if (family === undefined) return "unresolvable"
  if (family === "ipv6") {
    const carried = embeddedIpv4(address)
    if (carried.length > 0) return carried.map(refusedRange).find((range) => range !== undefined)
  }
  return lists.find((entry) => entry.family === family && entry.list.check(address, family))?.range
}

/** `OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS` (default: none). */
export const webhookAllowedHostsConfig: Config.Config<ReadonlySet<string>> = Config.String(WEBHOOK_ALLOWED_HOSTS_VARIABLE).pipe(
  Config.withDefault(""),
  Config.map(parseAllowedHosts)
)

/**
 * The refusal of a URL host that is non-public on its face, without DNS: an IP literal in a refused range, or
 * `localhost` / `*.localhost` (RFC 6761); `undefined` for any other host (a name is checked when connecting) or an
 * allowed one. For a store-time check that must not depend on DNS.
 */
export const literalRefusal = (host: string, allowed: ReadonlySet<string>, variable?: string): ProviderAddressRefused | undefined => {
  const name = normalizeHost(host)
  if (allowed.has(name)) return undefined
  const range = Net.isIP(name) !== 0 ? refusedRange(name) : name === "localhost" || name.endsWith(".localhost") ? "loopback" : undefined
  return range === undefined ? undefined : new ProviderAddressRefused({ host: name, range, variable })
}

interface Resolved {
  readonly address: string
  readonly family: number
}

const refusal = (host: string, range: string, variable?: string) =>
  Object.assign(new ProviderAddressRefused({ host, range, variable }), { code: REFUSED_CODE })

/** Every address `host` resolves to, each checked (an allowed host is not checked); rejects with `ProviderAddressRefused`. */
export const resolveChecked = async (host: string, allowed: ReadonlySet<string>, variable?: string): Promise<ReadonlyArray<Resolved>> => {
  const name = normalizeHost(host)
  const isAllowed = allowed.has(name)
  let addresses: ReadonlyArray<Resolved>
  if (Net.isIP(name) !== 0) {
    addresses = [{ address: name, family: Net.isIP(name) }]
  } else {
    try {
      addresses = await Dns.promises.lookup(name, { all: true, verbatim: true })
    } catch {
      throw refusal(name, "unresolvable", variable)
    }
  }
  if (addresses.length === 0) throw refusal(name, "unresolvable", variable)
  if (!isAllowed) {
    for (const { address } of addresses) {
      const range = refusedRange(address)
      if (range !== undefined) throw refusal(name, range, variable)
    }
  }
  return addresses
}

/** Checks the host of a provider URL now (a store-time check; a connection checks again in `guardedLookup`). */
export const checkHost = (host: string, allowed: ReadonlySet<string>): Effect.Effect<void, ProviderAddressRefused> =>
  Effect.tryPromise({
    try: () => resolveChecked(host, allowed),
    catch: (error) => error instanceof ProviderAddressRefused ? error : new ProviderAddressRefused({ host, range: "unresolvable" })
  }).pipe(Effect.asVoid)

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | ReadonlyArray<{ address: string; family: number }>,
  family?: number
) => void

/**
 * A `lookup` for `net.connect` / `http(s).request`: resolves the name and refuses it (error code `REFUSED_CODE`) when
 * any address is non-public, so the socket connects only to an address that was checked. Node skips `lookup` for an
 * IP-literal host: check those with `checkHost` before connecting.
 */
export const guardedLookup = (allowed: ReadonlySet<string>, variable?: string) =>
(hostname: string, options: { readonly all?: boolean | undefined; readonly family?: number | string | undefined }, callback: LookupCallback) => {
  resolveChecked(hostname, allowed, variable).then(
    (addresses) => {
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses
      if (wanted.length === 0) return callback(refusal(hostname, "unresolvable", variable), [])
      if (options.all === true) return callback(null, wanted)
      callback(null, wanted[0]!.address, wanted[0]!.family)
    },
    (error: NodeJS.ErrnoException) => callback(error, [])
  )
}
