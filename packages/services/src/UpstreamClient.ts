import * as Http from "node:http"
import * as Https from "node:https"
import * as Net from "node:net"
import * as ProviderAddress from "./ProviderAddress.ts"

/**
 * HTTP(S) requests to an org-supplied URL (a BYOK model provider, an outbound webhook target): connections go only to
 * public addresses (or hosts the operator allowed in `variable`), checked in the socket's own DNS lookup
 * (`ProviderAddress.guardedLookup`), so what is checked is what is connected to. No redirects are followed.
 * Keep-alive connections are pooled per client.
 */
export interface UpstreamClient {
  /** Resolves with the response head (its body streams); rejects with `ProviderAddressRefused` or a network error. */
  readonly request: (target: string, init: {
    readonly method: string
    readonly headers: Readonly<Record<string, string>>
    readonly body?: Uint8Array | undefined
    readonly signal: AbortSignal
  }) => Promise<Http.IncomingMessage>
  readonly close: () => void
}

export const make = (allowedHosts: ReadonlySet<string>, variable: string = ProviderAddress.ALLOWED_HOSTS_VARIABLE): UpstreamClient => {
  const lookup = ProviderAddress.guardedLookup(allowedHosts, variable)
  const http = new Http.Agent({ keepAlive: true, lookup } as Http.AgentOptions)
  const https = new Https.Agent({ keepAlive: true, lookup } as Https.AgentOptions)
  return {
    request: async (target, init) => {
      const url = new URL(target)
      // Node connects to an IP-literal host without a lookup: check it here.
      if (Net.isIP(url.hostname.replace(/^\[(.*)\]$/, "$1")) !== 0) await ProviderAddress.resolveChecked(url.hostname, allowedHosts, variable)
      const secure = url.protocol === "https:"
      return new Promise((resolve, reject) => {
        const request = (secure ? Https : Http).request(url, {
          method: init.method,
          headers: init.headers,
          agent: secure ? https : http,
          signal: init.signal
        }, resolve)
        request.on("error", reject)
        request.end(init.body)
      })
    },
    close: () => {
      http.destroy()
      https.destroy()
    }
  }
}
