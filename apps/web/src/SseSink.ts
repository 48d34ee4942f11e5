import { Equal } from "effect"
import { Readable } from "node:stream"

/**
 * One SSE response body as the HTTP server sends it: a Node `Readable` that the server pipes to the socket (with the
 * socket's backpressure), fed by plain calls — the session hub's fan-out, the process-wide keep-alive, the end on
 * drain or revocation — so an open stream costs no fiber, queue or timer of its own. Frames `send` while the socket
 * keeps up go straight to it; the rest wait here (`readableLength` bytes), and the feeder decides when that is too
 * much (the hub ends a slow consumer). `finish` ends the stream after what is queued; a client that disconnected
 * destroys it, after which both are no-ops.
 */
export class SseSink extends Readable {
  #finished = false
  /** Where the server pipes it (the HTTP response), to close the connection of a client that stopped reading. */
  #destination: { destroy?: () => void } | undefined

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

  /** Queues one encoded frame (or several); ignored once finished. */
  send(chunk: Uint8Array) {
    if (!this.finished) this.push(chunk)
  }

  /** Ends the stream after what is queued (the client reconnects by `Last-Event-ID`). Idempotent. */
  finish() {
    if (this.finished) return
    this.#finished = true
    this.push(null)
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    this.#destination = destination as { destroy?: () => void }
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
  }

  override _read() {
    // Frames are pushed by the feeders; the pipe's demand needs no action here.
  }
}
