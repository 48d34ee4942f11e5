import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Config, Effect, type FileSystem, Layer, type Path } from "effect"
import type { Etag, HttpPlatform, HttpServer, HttpServerError } from "effect/http"
import { Server, type ServerOptions, type ServerResponse, STATUS_CODES } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { ApiError } from "@cowork/domain"

/**
 * The Node HTTP server of every role (the web API, the gateway, the worker's and scheduler's probe port). Production
 * runs behind a reverse proxy or a pod network (TLS, client-facing timeouts, request buffering); these bounds still
 * hold when a client reaches the process directly.
 */
export interface HttpTimeouts {
  /** The whole request, headers and body (`OPEN_COWORK_CLOUD_HTTP_REQUEST_TIMEOUT_MS`, default 60 s). 408 after. */
  readonly requestTimeoutMs: number
  /** The request headers (`OPEN_COWORK_CLOUD_HTTP_HEADERS_TIMEOUT_MS`, default 15 s). */
  readonly headersTimeoutMs: number
  /** An idle keep-alive connection between requests (`OPEN_COWORK_CLOUD_HTTP_KEEP_ALIVE_TIMEOUT_MS`, default 5 s). */
  readonly keepAliveTimeoutMs: number
}

const httpTimeouts = Effect.gen(function*() {
  const requestTimeoutMs = yield* Config.Int("OPEN_COWORK_CLOUD_HTTP_REQUEST_TIMEOUT_MS").pipe(Config.withDefault(60_000))
  const headersTimeoutMs = yield* Config.Int("OPEN_COWORK_CLOUD_HTTP_HEADERS_TIMEOUT_MS").pipe(Config.withDefault(15_000))
  const keepAliveTimeoutMs = yield* Config.Int("OPEN_COWORK_CLOUD_HTTP_KEEP_ALIVE_TIMEOUT_MS").pipe(Config.withDefault(5_000))
  return {
    requestTimeoutMs,
    // Node requires headersTimeout <= requestTimeout.
    headersTimeoutMs: Math.min(headersTimeoutMs, requestTimeoutMs),
    keepAliveTimeoutMs
  } satisfies HttpTimeouts
})

/** Node's parser and timeout errors, by the status the client is told. */
const statusForClientError = (error: NodeJS.ErrnoException): number => {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return 431
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return 408
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return 413
    default:
      return 400
  }
}

const messageForStatus: Record<number, string> = {
  400: "the request could not be parsed as HTTP/1.1",
  408: "the request was not received in time",
  413: "the request is too large",
  431: "the request headers are too large"
}

/**
 * Answers what Node's parser rejects before any route runs with the error shape, then closes the connection (the
 * stream is no longer in a known state). Nothing is written once a response has started on the socket.
 */
const answerClientError = (error: NodeJS.ErrnoException, socket: Duplex) => {
  if (error.code === "ECONNRESET" || !socket.writable || (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy()
    return
  }
  const status = statusForClientError(error)
  const body = JSON.stringify(ApiError.envelope(status, messageForStatus[status] ?? STATUS_CODES[status] ?? "bad request"))
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${globalThis.crypto.randomUUID()}\r\nconnection: close\r\n\r\n${body}`
  )
}

/**
 * A Node server whose `close` (the platform's shutdown) also ends keep-alive. Node closes the connections idle at that
 * moment, but a connection whose request is still in flight goes back to keep-alive once answered, and stays open until
 * the client leaves or `keepAliveTimeout` passes: a client that goes on using it (a gateway's agent on the web role, a
 * provider's webhook client on the gateway, a scraper on a probe port) kept the process for the whole shutdown grace.
 * From `close` on, a response not yet started says `Connection: close`, and a connection is closed as soon as its
 * response finishes (one that streamed, say SSE, included).
 */
class DrainingServer extends Server {
  #closing = false
  readonly #sockets = new Set<Socket>()
  readonly #own = new Set<(...args: Array<any>) => void>()

  constructor(options: ServerOptions) {
    super(options)
    this.on("connection", (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once("close", () => this.#sockets.delete(socket))
    })
    // The port is bound before the role's routes are attached (its layers are still being built): Node would leave a
    // request arriving in between unanswered forever (a health probe without its own deadline then hung). Until a
    // handler is attached, a request is answered 503 with Retry-After and the connection closed.
    const starting = (_request: unknown, response: ServerResponse) => {
      if (this.listeners("request").some((listener) => !this.#own.has(listener as never)) || response.headersSent) return
      const body = JSON.stringify(ApiError.envelope(503, "the server is starting"))
      response.writeHead(503, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "retry-after": "1",
        "x-request-id": globalThis.crypto.randomUUID(),
        connection: "close"
      })
      response.end(body)
    }
    this.#own.add(starting)
    this.on("request", starting)
  }

  #lastOnItsConnection(response: ServerResponse) {
    if (!response.headersSent) response.shouldKeepAlive = false
    response.once("finish", () => setImmediate(() => this.closeIdleConnections()))
  }

  override close(callback?: (error?: Error) => void): this {
    if (!this.#closing) {
      this.#closing = true
      const last = (_request: unknown, response: ServerResponse) => this.#lastOnItsConnection(response)
      this.#own.add(last)
      // Before the handler: a route answering synchronously (a probe) writes its headers inside its own listener.
      this.prependListener("request", last)
      for (const socket of this.#sockets) {
        const response = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
        if (response != null) this.#lastOnItsConnection(response)
      }
    }
    return super.close(callback)
  }
}

/** A Node server with the given timeouts that answers parser errors in the error shape and ends keep-alive on close. */
export const makeServer = (timeouts: HttpTimeouts): Server => {
  const server = new DrainingServer({
    requestTimeout: timeouts.requestTimeoutMs,
    headersTimeout: timeouts.headersTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    // How often Node checks the two timeouts above (its default, 30 s, would let a slow client overstay by that much).
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(timeouts.headersTimeoutMs / 2)))
  })
  server.on("clientError", answerClientError)
  return server
}

/** The server on `host:port` (host default: all interfaces) with the configured timeouts and graceful-shutdown window. */
export const layerOn = (
  port: number,
  options: { readonly host?: string; readonly gracefulShutdownMs?: number } = {}
): Layer.Layer<
  HttpServer.HttpServer | HttpPlatform.HttpPlatform | Etag.Generator | FileSystem.FileSystem | Path.Path,
  Config.ConfigError | HttpServerError.ServeError
> =>
  Layer.unwrap(Effect.map(httpTimeouts, (timeouts) =>
    NodeHttpServer.layer(() => makeServer(timeouts), {
      port,
      ...(options.host === undefined ? {} : { host: options.host }),
      ...(options.gracefulShutdownMs === undefined ? {} : { gracefulShutdownTimeout: `${options.gracefulShutdownMs} millis` })
    })))
