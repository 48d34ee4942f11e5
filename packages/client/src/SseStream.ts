import { Duration } from "effect"
import * as Sse from "effect/encoding/Sse"

/**
 * One SSE frame as our streams send it: `id: <sequence>`, `event: <type>`, `data: <json>`; or a `retry:` hint
 * (`retry` in milliseconds, as sent, with an empty event).
 */
export interface SseFrame {
  readonly id: string | undefined
  readonly event: string
  readonly data: string
  readonly retry?: string | undefined
}

/** A push parser over the standard (WHATWG) SSE rules: feed it text chunks, it calls `onFrame` per complete frame. */
export const makeFrameReader = (onFrame: (frame: SseFrame) => void): { readonly feed: (chunk: string) => void } => {
  const parser = Sse.makeParser((event) => {
    if (event._tag === "Event") onFrame({ id: event.id, event: event.event, data: event.data })
    else onFrame({ id: event.lastEventId, event: "", data: "", retry: String(Duration.toMillis(event.duration)) })
  })
  return {
    feed: (chunk) => {
      const error = parser.feed(chunk)
      if (error !== undefined) throw error
    }
  }
}

/**
 * Opens an SSE stream with `fetch` and calls `onFrame` for each frame as it arrives, until `signal` aborts or the
 * server ends the stream. Resolves with the end of the stream once the headers are in; rejects unless the response
 * is a 200.
 */
export const openSse = async (
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  onFrame: (frame: SseFrame) => void
): Promise<{ readonly ended: Promise<void> }> => {
  const response = await fetch(url, { headers, signal })
  if (response.status !== 200 || response.body === null) {
    throw new Error(`SSE ${url} answered ${response.status}: ${await response.text().catch(() => "")}`)
  }
  const reader = makeFrameReader(onFrame)
  const body = response.body.pipeThrough(new TextDecoderStream()).getReader()
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await body.read()
        if (done) return
        reader.feed(value)
      }
    } catch {
      return
    }
  })()
  return { ended }
}
