import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Metrics } from "@cowork/observability"
import { ByokStore, ProviderAddress, UpstreamClient } from "@cowork/services"
import { type Config, Context, Effect, Layer, Redacted, type Scope } from "effect"

/**
 * The worker's loopback model proxy: the only place a provider key exists in plaintext, and only in memory.
 * Opencode is configured with `http://127.0.0.1:<port>/p/<session token>/v1` as its provider's base URL and a
 * placeholder key, so its config endpoints, the agent's shell and its data dir never hold the key. A request is
 * authenticated by its session token (constant-time), the org's key is revealed from the key source, the
 * provider's auth header is added (anything opencode sent in its place is dropped), and the request is forwarded
 * to the provider's base URL with the answer streamed back, only if that URL's host is public or allowed by the
 * operator (`ProviderAddress`; otherwise 502 `upstream_address_refused`). Token usage reported in the answers is counted per
 * org and session. A key that cannot be revealed answers 401 with a redacted reason, is counted in
 * `open_cowork_cloud_byok_reveal_failures_total`, and is reported to the session's registration.
 */

/** Why a key could not be revealed (a closed list: it becomes a metric label and a user-visible reason). */
const REVEAL_FAILURE_REASONS = ["not_configured", "unknown_key", "authentication_failed", "malformed", "unavailable"] as const
export type RevealFailureReason = (typeof REVEAL_FAILURE_REASONS)[number]

export interface UpstreamKey {
  readonly apiKey: Redacted.Redacted<string>
  /** The provider's OpenAI-compatible base URL (`…/v1`). */
  readonly baseUrl: string
  /** The header the key goes in: `authorization` (`Bearer <key>`, default) or e.g. `x-api-key` (the raw key). */
  readonly header?: string | undefined
}

export interface TokenUsage {
  readonly requests: number
  readonly inputTokens: number
  readonly outputTokens: number
}

export interface Registration {
  /** The base URL to configure opencode with (contains the session's token: treat as a credential). */
  readonly baseUrl: string
}

export class ModelProxy extends Context.Service<ModelProxy, {
  /** Registers a session (its org's key is used for its calls) until the scope closes. */
  readonly register: (input: {
    readonly sessionId: string
    readonly orgId: string
    /** Called (redacted reason) when a call of this session could not get its key. */
    readonly onRevealFailure?: ((reason: RevealFailureReason, message: string) => void) | undefined
  }) => Effect.Effect<Registration, never, Scope.Scope>
  /** Tokens counted for an org's session (zero when nothing passed). */
  readonly usage: (orgId: string, sessionId: string) => Effect.Effect<TokenUsage>
}>()("cowork/runtime/ModelProxy") {}

class RevealFailure extends Error {
  readonly reason: RevealFailureReason
  constructor(reason: RevealFailureReason, message: string) {
    super(message)
    this.reason = reason
  }
}

interface Options {
  /** The provider whose key the proxy reveals for every session (e.g. `openai`). */
  readonly provider: string
  /** Reveals an org's key for a provider; fails with the redacted reason. */
  readonly reveal: (orgId: string, provider: string) => Effect.Effect<UpstreamKey, RevealFailure>
  /** Largest request body forwarded (default 16 MiB). */
  readonly maxBodyBytes?: number | undefined
  /** Provider hosts allowed to resolve to non-public addresses (`OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS`; default none). */
  readonly allowedHosts?: ReadonlySet<string> | undefined
}

interface Entry {
  readonly secretHash: Buffer
  readonly sessionId: string
  readonly orgId: string
  readonly onRevealFailure: ((reason: RevealFailureReason, message: string) => void) | undefined
}

const HOP_BY_HOP = new Set([
  "host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
  "proxy-authenticate", "content-length", "authorization", "x-api-key", "api-key", "accept-encoding"
])

const sha256 = (value: string) => createHash("sha256").update(value).digest()

/** Reads `usage` objects out of a chat-completions answer (SSE frames or one JSON body). */
class UsageScanner {
  inputTokens = 0
  outputTokens = 0
  private pending = ""

  push(text: string): void {
    this.pending += text
    let newline = this.pending.indexOf("\n")
    while (newline !== -1) {
      this.line(this.pending.slice(0, newline))
      this.pending = this.pending.slice(newline + 1)
      newline = this.pending.indexOf("\n")
    }
  }

  end(): void {
    this.line(this.pending)
    this.pending = ""
  }

  private line(raw: string): void {
    const line = raw.trim()
    const json = line.startsWith("data:") ? line.slice(5).trim() : line
    if (!json.startsWith("{") || !json.includes("\"usage\"")) return
    try {
      const usage = (JSON.parse(json) as { usage?: { prompt_tokens?: number; completion_tokens?: number } | null }).usage
      if (usage === undefined || usage === null) return
      this.inputTokens += usage.prompt_tokens ?? 0
      this.outputTokens += usage.completion_tokens ?? 0
    } catch {
      // not a complete JSON line: no usage to count
    }
  }
}

const readBody = (req: IncomingMessage, limit: number): Promise<Buffer | undefined> =>
  new Promise((resolve, reject) => {
    const parts: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > limit) {
        resolve(undefined)
        req.destroy()
        return
      }
      parts.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(parts)))
    req.on("error", reject)
  })

const answer = (res: ServerResponse, status: number, type: string, message: string) => {
  if (res.headersSent) return res.end()
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify({ error: { message, type, code: type } }))
}

const make = (options: Options) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const context = yield* Effect.context<never>()
    const run = Effect.runPromiseWith(context)
    const entries = new Map<string, Entry>()
    const usage = new Map<string, { requests: number; inputTokens: number; outputTokens: number }>()
    const maxBody = options.maxBodyBytes ?? 16 * 1024 * 1024
    const upstreams = yield* Effect.acquireRelease(
      Effect.sync(() => UpstreamClient.make(options.allowedHosts ?? new Set())),
      (client) => Effect.sync(() => client.close())
    )

    const lookup = (token: string): Entry | undefined => {
      const dot = token.indexOf(".")
      if (dot <= 0) return undefined
      const entry = entries.get(token.slice(0, dot))
      if (entry === undefined) return undefined
      return timingSafeEqual(entry.secretHash, sha256(token.slice(dot + 1))) ? entry : undefined
    }

    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      const match = /^\/p\/([A-Za-z0-9_.-]{1,200})\/v1(\/[^?#]*)?(\?.*)?$/.exec(req.url ?? "")
      const entry = match === null ? undefined : lookup(match[1]!)
      if (match === null || entry === undefined) return answer(res, 404, "not_found", "unknown model proxy route")
      const body = await readBody(req, maxBody)
      if (body === undefined) return answer(res, 413, "request_too_large", "request body too large")
      let key: UpstreamKey
      try {
        key = await run(options.reveal(entry.orgId, options.provider))
      } catch (error) {
        const reason: RevealFailureReason = error instanceof RevealFailure ? error.reason : "unavailable"
        const message = `the organization's ${options.provider} key could not be used (${reason})`
        await run(metrics.inc("open_cowork_cloud_byok_reveal_failures_total", { reason }))
        entry.onRevealFailure?.(reason, message)
        return answer(res, 401, "cowork_byok_reveal_failed", message)
      }
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue
        headers[name] = Array.isArray(value) ? value.join(", ") : value
      }
      Object.assign(headers, authHeaders(key))
      const target = `${key.baseUrl.replace(/\/$/, "")}${match[2] ?? ""}${match[3] ?? ""}`
      const abort = new AbortController()
      res.on("close", () => abort.abort())
      let upstream: IncomingMessage
      try {
        upstream = await upstreams.request(target, {
          method: req.method ?? "POST",
          headers,
          body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
          signal: abort.signal
        })
      } catch (error) {
        return error instanceof ProviderAddress.ProviderAddressRefused
          ? answer(res, 502, "upstream_address_refused", `the ${options.provider} endpoint was refused: ${error.message}`)
          : answer(res, 502, "upstream_unreachable", `the ${options.provider} endpoint could not be reached`)
      }
      const status = upstream.statusCode ?? 502
      const responseHeaders: Record<string, string | Array<string>> = {}
      for (const [name, value] of Object.entries(upstream.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name) && name !== "content-encoding") responseHeaders[name] = value
      }
      res.writeHead(status, responseHeaders)
      const scanner = new UsageScanner()
      const decoder = new TextDecoder()
      try {
        for await (const chunk of upstream as AsyncIterable<Buffer>) {
          scanner.push(decoder.decode(chunk, { stream: true }))
          res.write(chunk)
        }
      } catch {
        // the client went away or the upstream broke: end what we have
      } finally {
        scanner.end()
        res.end()
      }
      const key2 = `${entry.orgId}\u0000${entry.sessionId}`
      const counted = usage.get(key2) ?? { requests: 0, inputTokens: 0, outputTokens: 0 }
      counted.requests += 1
      counted.inputTokens += scanner.inputTokens
      counted.outputTokens += scanner.outputTokens
      usage.set(key2, counted)
      await run(Effect.all([
        metrics.inc("open_cowork_cloud_model_proxy_requests_total", { status: status >= 200 && status < 300 ? "ok" : "error" }),
        metrics.inc("open_cowork_cloud_model_proxy_tokens_total", { direction: "input" }, scanner.inputTokens),
        metrics.inc("open_cowork_cloud_model_proxy_tokens_total", { direction: "output" }, scanner.outputTokens)
      ], { discard: true }))
    }

    const server = createServer((req, res) => {
      handle(req, res).catch(() => answer(res, 502, "proxy_error", "model proxy error"))
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )

    return ModelProxy.of({
      register: ({ sessionId, orgId, onRevealFailure }) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const id = randomBytes(9).toString("base64url")
            const secret = randomBytes(24).toString("base64url")
            entries.set(id, { secretHash: sha256(secret), sessionId, orgId, onRevealFailure })
            return { id, registration: { baseUrl: `http://127.0.0.1:${port}/p/${id}.${secret}/v1` } }
          }),
          ({ id }) => Effect.sync(() => entries.delete(id))
        ).pipe(Effect.map(({ registration }) => registration)),
      usage: (orgId, sessionId) =>
        Effect.sync(() => ({ ...(usage.get(`${orgId}\u0000${sessionId}`) ?? { requests: 0, inputTokens: 0, outputTokens: 0 }) }))
    })
  })

/** The auth header a key goes in, as the proxy adds it. */
const authHeaders = (key: UpstreamKey): Record<string, string> => {
  const header = (key.header ?? "authorization").toLowerCase()
  return { [header]: header === "authorization" ? `Bearer ${Redacted.value(key.apiKey)}` : Redacted.value(key.apiKey) }
}

/**
 * A bounded test call with a key: `GET <baseUrl>/models` (10 s, no redirects), its body discarded. The status tells
 * whether the provider accepts the key; an unreachable provider is `undefined`; a host that is not public (and not
 * allowed) fails with `ProviderAddressRefused` before anything is sent.
 */
export const probeUpstream = (
  key: UpstreamKey,
  allowedHosts: ReadonlySet<string>,
  timeoutMs = 10_000
): Effect.Effect<number | undefined, ProviderAddress.ProviderAddressRefused> =>
  Effect.acquireUseRelease(
    Effect.sync(() => UpstreamClient.make(allowedHosts)),
    (client) =>
      Effect.tryPromise({
        try: async () => {
          try {
            const response = await client.request(`${key.baseUrl.replace(/\/$/, "")}/models`, {
              method: "GET",
              headers: authHeaders(key),
              signal: AbortSignal.timeout(timeoutMs)
            })
            response.destroy()
            return response.statusCode
          } catch (error) {
            if (error instanceof ProviderAddress.ProviderAddressRefused) throw error
            return undefined
          }
        },
        catch: (error) => error as ProviderAddress.ProviderAddressRefused
      }),
    (client) => Effect.sync(() => client.close())
  )

/** OpenAI-compatible base URLs of providers whose keys need no `baseUrl` when stored. */
export const DEFAULT_BASE_URLS: Readonly<Record<string, string>> = {
  openai: "https://api.openai.com/v1",
  openrouter: "https://openrouter.ai/api/v1",
  groq: "https://api.groq.com/openai/v1",
  mistral: "https://api.mistral.ai/v1",
  deepseek: "https://api.deepseek.com/v1"
}

/** Reveals from the org's stored keys (`ByokStore`): the stored `baseUrl`, else the provider's default. */
export const revealFromByok = (byok: ByokStore["Service"]) => (orgId: string, provider: string) =>
  byok.reveal(orgId, provider).pipe(
    Effect.mapError((error) =>
      error._tag === "NotFound"
        ? new RevealFailure("not_configured", "no key stored")
        : error._tag === "SecretRevealFailed"
        ? new RevealFailure(error.reason, "the key's envelope could not be opened")
        : new RevealFailure("unavailable", "the secret adapter is unavailable")
    ),
    Effect.flatMap((revealed) => {
      const baseUrl = revealed.baseUrl ?? DEFAULT_BASE_URLS[provider]
      return baseUrl === undefined
        ? Effect.fail(new RevealFailure("not_configured", "no base URL for the provider"))
        : Effect.succeed<UpstreamKey>({ apiKey: revealed.apiKey, baseUrl })
    })
  )

/** The proxy over the org keys in `ByokStore`, for one provider (allowed hosts from `OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS`). */
export const layerByok = (provider: string): Layer.Layer<ModelProxy, Config.ConfigError, Metrics | ByokStore> =>
  Layer.effect(ModelProxy, Effect.gen(function*() {
    const byok = yield* ByokStore
    const allowedHosts = yield* ProviderAddress.allowedHostsConfig
    return yield* make({ provider, reveal: revealFromByok(byok), allowedHosts })
  }))
