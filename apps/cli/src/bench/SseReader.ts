export interface SseFrame {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: string
}

const parseFrame = (part: string): SseFrame | undefined => {
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
  return id === undefined && event === undefined && data.length === 0 ? undefined : { id, event, data: data.join("\n") }
}

/**
 * Opens an SSE stream and calls `onFrame` for each frame as it arrives, until `signal` aborts. Resolves once the
 * response headers are in (rejects unless it is a 200).
 */
export const openSse = async (
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  onFrame: (frame: SseFrame) => void
): Promise<void> => {
  const response = await fetch(url, { headers, signal })
  if (response.status !== 200 || response.body === null) {
    throw new Error(`SSE ${url} answered ${response.status}: ${await response.text().catch(() => "")}`)
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  void (async () => {
    let buffer = ""
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        buffer += value
        const parts = buffer.split(/\r?\n\r?\n/)
        buffer = parts.pop() ?? ""
        for (const part of parts) {
          const frame = parseFrame(part)
          if (frame !== undefined) onFrame(frame)
        }
      }
    } catch {
      return
    }
  })()
}
