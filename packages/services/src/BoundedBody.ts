import { Effect, Stream } from "effect"
import type { HttpServerRequest } from "effect/http"

/**
 * A request's body when it is at most `maxBytes`, else `undefined`: refused on its `content-length` before reading,
 * or as it streams in (reading stops at the first chunk past the limit, so an oversized body is never held whole).
 * For routes that read a raw body themselves (signed webhooks).
 */
export const readBoundedBody = (request: HttpServerRequest.HttpServerRequest, maxBytes: number): Effect.Effect<Buffer | undefined> =>
  Effect.gen(function*() {
    if (Number(request.headers["content-length"] ?? 0) > maxBytes) return undefined
    const chunks: Array<Uint8Array> = []
    let size = 0
    let overLimit = false
    yield* request.stream.pipe(
      Stream.runForEachWhile((chunk) =>
        Effect.sync(() => {
          size += chunk.length
          if (size > maxBytes) {
            overLimit = true
            return false
          }
          chunks.push(chunk)
          return true
        })
      ),
      Effect.orDie
    )
    return overLimit ? undefined : Buffer.concat(chunks)
  })
