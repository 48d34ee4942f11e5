import { Equal } from "effect"
import type { ServerResponse } from "node:http"
import type { Socket } from "node:net"
import { Readable } from "node:stream"
import type { SseChunk } from "./SseChunk.ts"

const EMPTY = Buffer.alloc(0)

/** What the sink needs of the HTTP response the server pipes it to (Node's `ServerResponse`). */
type Destination = Partial<
  Pick<ServerResponse, "headersSent" | "chunkedEncoding" | "writableEnded" | "writableLength" | "writableNeedDrain" | "once" | "off">
> & {
  readonly socket?: Socket | null
  /** Node's `OutgoingMessage` buffer for output written before the response had its socket (undocumented). */
  readonly outputData?: ReadonlyArray<unknown>
  destroy?: () => void
}

/**
 * One SSE response body, fed by plain calls — the session hub's fan-out, the process-wide keep-alive, the end on
 * drain or revocation — so an open stream costs no fiber, queue or timer of its own.
 *
 * The web hands it its HTTP response with `attach` once the response's head is written (`sseResponse`): no pipe, no
 * request fiber waiting on the body; what was queued before goes out with the head, and `finish` ends the response
 * (`close` of the response, however it comes, calls the owner back once). Anything else can still read it as a Node
 * `Readable` (`pipe`, `data` events), the frames queued in it until read.
 *
 * Once the response's headers are on its socket, frames skip the pipe: `send` hands the chunk's pre-framed bytes
 * (HTTP/1.1 chunked encoding built once per chunk, for every stream that is sent it) to the socket in ONE write —
 * no `Readable` push, pipe `data` event, `ServerResponse.write` (chunk size line, CRLFs, cork and the uncork on the
 * next tick) per stream. The end (`finish`) still goes through the pipe, so the response ends as any other, after
 * what was written. `queuedBytes` is what waits in this process for the client (here, and in the socket's own
 * buffer beyond what the kernel took); the feeder decides when that is too much (the hub ends a slow consumer). A
 * client that disconnected destroys the sink, after which `send` and `finish` are no-ops.
 */
export class SseSink extends Readable {
  #finished = false
  /** Where the server pipes it (the HTTP response). */
  #destination: Destination | undefined
  /** Handed the response by `attach` (no pipe): frames go to it (or its socket) directly, `finish` ends it. */
  #attached = false
  /** The response's socket, once frames may be written to it directly. */
  #socket: Socket | undefined
  #chunked = true
  /** Waiting for the client to take what was queued (`whenFlushed`); released by the end of the stream too. */
  #waiters: Set<() => void> | undefined

  constructor() {
    super()
    // Compared and hashed by reference: a cause that carries the response (a client abort, when the server combines
    // causes) must not walk the stream's graph (socket, server, every pipe) — that cost milliseconds per disconnect.
    Equal.byReferenceUnsafe(this)
  }

  /** No more frames will be queued: finished, or destroyed by a disconnect. */
  get finished() {
    return this.#finished || this.destroyed
  }

  /** Bytes sent that the client has not taken and the kernel does not hold yet: queued here and in the socket. */
  get queuedBytes(): number {
    return this.readableLength + (this.#socket?.writableLength ?? this.#destination?.writableLength ?? 0)
  }

  /** Queues encoded frames; ignored once finished. */
  send(chunk: SseChunk) {
    if (this.finished) return
    const socket = this.#socket ?? this.#direct()
    if (socket !== undefined) {
      if (!socket.destroyed) socket.write(this.#chunked ? chunk.chunked : chunk.bytes)
    } else if (this.#attached) (this.#destination as ServerResponse).write(chunk.bytes)
    else this.push(chunk.bytes)
  }

  /**
   * Sends the stream on `response`, whose head is set (`writeHead`) but not sent: what was queued goes out with the
   * head, later frames straight to the socket, `finish` ends the response. `onClose` runs once when the response
   * closes, however it does (ended and flushed, the client gone, `abort`); the sink is finished from then on.
   */
  attach(response: ServerResponse, onClose: () => void) {
    this.#destination = response as unknown as Destination
    this.#attached = true
    response.once("close", () => {
      this.#finished = true
      this.destroy()
      this.#release()
      onClose()
    })
    const queued = this.read() as Buffer | null
    if (queued !== null) response.write(queued)
    else response.flushHeaders()
    if (this.#finished) response.end()
  }

  /**
   * The response's socket when frames can go straight to it: the headers were sent (with the first frame), nothing
   * waits in this sink or in the response, the socket belongs to this response (not one pipelined ahead of it), and
   * it is writable. Otherwise frames take the pipe (until the check passes).
   */
  #direct(): Socket | undefined {
    const res = this.#destination
    const socket = res?.socket
    if (
      res === undefined || socket == null || res.headersSent !== true || res.writableEnded === true ||
      this.readableLength > 0 || (res.outputData?.length ?? 0) > 0 ||
      (socket as Socket & { _httpMessage?: unknown })._httpMessage !== res || !socket.writable
    ) return undefined
    this.#chunked = res.chunkedEncoding === true
    this.#socket = socket
    return socket
  }

  /**
   * Calls `ready` once the client has taken what was queued so far (handed to the kernel), or the stream finished or
   * closed; returns a canceller. Event-driven: the socket's write callback once frames go straight to it; before that
   * (the first frames, piped), the pipe starting or the response's `drain`.
   */
  whenFlushed(ready: () => void): () => void {
    let done = false
    const cleanups: Array<() => void> = []
    const release = () => {
      done = true
      for (const cleanup of cleanups) cleanup()
    }
    const fire = () => {
      if (done) return
      release()
      ready()
    }
    if (this.finished) {
      fire()
      return release
    }
    const waiters = this.#waiters ??= new Set()
    waiters.add(fire)
    cleanups.push(() => waiters.delete(fire))
    const on = (emitter: { once: (event: string, f: () => void) => unknown; off: (event: string, f: () => void) => unknown }, event: string) => {
      emitter.once(event, fire)
      cleanups.push(() => emitter.off(event, fire))
    }
    on(this, "close")
    const socket = this.#socket ?? this.#direct()
    const destination = this.#destination
    // An empty write's callback runs once every write before it is handed to the kernel.
    if (socket !== undefined) socket.write(EMPTY, fire)
    else if (!this.#attached && this.readableFlowing !== true) on(this, "resume")
    else if (destination?.writableNeedDrain === true && destination.once !== undefined) on(destination as never, "drain")
    else {
      // Flowing with nothing holding it back: what is queued here goes out on this tick's flow.
      const immediate = setImmediate(fire)
      cleanups.push(() => clearImmediate(immediate))
    }
    return release
  }

  #release() {
    if (this.#waiters !== undefined) for (const waiter of [...this.#waiters]) waiter()
  }

  /** Ends the stream after what is queued (the client reconnects by `Last-Event-ID`). Idempotent. */
  finish() {
    if (this.finished) return
    this.#finished = true
    if (this.#attached) (this.#destination as ServerResponse).end()
    else this.push(null)
    this.#release()
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    this.#destination = destination as unknown as Destination
    return super.pipe(destination, options)
  }

  /**
   * Closes the connection now, whatever is still queued: for a finished stream whose client does not take what was
   * queued (it stopped reading), so it holds neither its buffers nor its stream slot. The client resumes by id.
   */
  abort() {
    this.#finished = true
    this.#destination?.destroy?.()
    this.destroy()
    this.#release()
  }

  override _read() {
    // Frames are pushed by the feeders; the pipe's demand needs no action here.
  }
}
