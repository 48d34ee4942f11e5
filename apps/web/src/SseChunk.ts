/**
 * Encoded SSE frames as every stream that is sent them shares them: the bytes, encoded once (per read per session, not
 * per stream), and the same bytes framed as one HTTP/1.1 chunk (`<size hex>\r\n<bytes>\r\n`), built once on first use,
 * so a stream's write is ONE pre-framed buffer handed to its socket (see `SseSink`).
 */
export class SseChunk {
  #chunked: Buffer | undefined
  readonly bytes: Buffer

  constructor(bytes: Buffer) {
    this.bytes = bytes
  }

  static text(text: string): SseChunk {
    return new SseChunk(Buffer.from(text, "utf8"))
  }

  get byteLength(): number {
    return this.bytes.byteLength
  }

  /** The bytes as one chunk of a chunked HTTP/1.1 body. */
  get chunked(): Buffer {
    if (this.#chunked === undefined) {
      const head = `${this.bytes.byteLength.toString(16)}\r\n`
      const out = Buffer.allocUnsafe(head.length + this.bytes.byteLength + 2)
      out.write(head, 0, "latin1")
      this.bytes.copy(out, head.length)
      out.write("\r\n", head.length + this.bytes.byteLength, "latin1")
      this.#chunked = out
    }
    return this.#chunked
  }
}
