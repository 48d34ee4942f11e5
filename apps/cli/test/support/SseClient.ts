import { Effect } from "effect"

export interface SseFrame {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: string
}

/** Parses complete frames out of `buffer`; returns them and the unparsed rest. */
export const parseFrames = (buffer: string): { readonly frames: ReadonlyArray<SseFrame>; readonly rest: string } => {
  const frames: Array<SseFrame> = []
  const parts = buffer.split(/\r?\n\r?\n/)
  const rest = parts.pop() ?? ""
  for (const part of parts) {
    let id: string | undefined
    let event: string | undefined
    const data: Array<string> = []
    for (const line of part.split(/\r?\n/)) {
      if (line.startsWith(":")) continue
      const colon = line.indexOf(":")
      const field = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "id") id = value
      else if (field === "event") event = value
      else if (field === "data") data.push(value)
    }
    if (id !== undefined || event !== undefined || data.length > 0) frames.push({ id, event, data: data.join("\n") })
  }
  return { frames, rest }
}

/**
 * Opens an SSE stream and calls `onFrame` for every frame until the scope closes (which aborts the request).
 * Fails if the response is not a 200 event stream.
 */
export const subscribe = (url: string, headers: Record<string, string>, onFrame: (frame: SseFrame) => void) =>
  Effect.gen(function*() {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    const response = yield* Effect.promise(() => fetch(url, { headers, signal: controller.signal }))
    if (response.status !== 200 || response.body === null) {
      const body = yield* Effect.promise(() => response.text().catch(() => ""))
      return yield* Effect.die(new Error(`SSE ${url} answered ${response.status}: ${body}`))
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    const pump = async () => {
      let buffer = ""
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return
          buffer += value
          const parsed = parseFrames(buffer)
          buffer = parsed.rest
          parsed.frames.forEach(onFrame)
        }
      } catch {
        return
      }
    }
    void pump()
  })
