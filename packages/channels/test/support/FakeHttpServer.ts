import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/**
 * A loopback HTTP server for provider fakes: records every request, and answers from a queue of injected faults
 * before the fake's own handler (a status with an optional `Retry-After`, or a hang that never answers).
 */

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

export type Fault =
  | { readonly kind: "status"; readonly status: number; readonly retryAfterSeconds?: number; readonly body?: unknown }
  /** Accepts the request and never answers (the client's timeout fires). */
  | { readonly kind: "hang" }

export interface Answer {
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
}

export class FakeHttpServer {
  readonly requests: Array<RecordedRequest> = []
  private readonly queued: Array<Fault> = []
  private always: Fault | undefined
  private readonly waiters = new Set<() => void>()
  private readonly hung = new Set<Http.ServerResponse>()
  private server: Http.Server | undefined
  url = ""

  private readonly handle: (request: RecordedRequest) => Answer
  private readonly renderFault: (fault: Extract<Fault, { kind: "status" }>) => Answer

  constructor(
    handle: (request: RecordedRequest) => Answer,
    renderFault: (fault: Extract<Fault, { kind: "status" }>) => Answer = (fault) => ({ status: fault.status, body: fault.body ?? { error: "injected" } })
  ) {
    this.handle = handle
    this.renderFault = renderFault
  }

  async start(): Promise<this> {
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const recorded: RecordedRequest = {
          method: req.method ?? "GET",
          path: req.url ?? "/",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          at: Date.now()
        }
        const fault = this.queued.shift() ?? this.always
        if (fault?.kind === "hang") {
          this.hung.add(res)
          res.on("close", () => this.hung.delete(res))
          this.notify()
          return
        }
        let answer: Answer
        if (fault?.kind === "status") {
          answer = this.renderFault(fault)
          if (fault.retryAfterSeconds !== undefined) answer = { ...answer, headers: { ...answer.headers, "retry-after": String(fault.retryAfterSeconds) } }
          this.faultsServed.push(recorded)
        } else {
          answer = this.handle(recorded)
          this.requests.push(recorded)
        }
        res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers })
        res.end(JSON.stringify(answer.body))
        this.notify()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    this.server = server
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return this
  }

  /** Requests answered with an injected status fault (not in `requests`). */
  readonly faultsServed: Array<RecordedRequest> = []

  /** The next `times` requests get `fault`. */
  inject(fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.queued.push(fault)
  }

  /** Every request gets `fault` until `heal()`. */
  failAlways(fault: Fault): void {
    this.always = fault
  }

  heal(): void {
    this.always = undefined
    this.queued.length = 0
  }

  /** Resolves once `predicate` holds (checked after every request), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 30_000, what = "condition"): Promise<void> {
    if (predicate()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`timed out waiting for ${what}`))
      }, timeoutMs)
      this.waiters.add(check)
    })
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy()
    const server = this.server
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** A fake service over one `FakeHttpServer`: started, stopped and given faults through it. */
export abstract class FakeService {
  abstract readonly server: FakeHttpServer

  async start(): Promise<this> {
    await this.server.start()
    return this
  }

  stop(): Promise<void> {
    return this.server.stop()
  }

  inject(fault: Fault, times = 1): void {
    this.server.inject(fault, times)
  }
}
