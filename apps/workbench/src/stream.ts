import { openSse, type SseFrame } from "@cowork/client"

/**
 * A resumable SSE subscription: opens the stream, and after a drop (network, server restart, draining 503) opens it
 * again with `Last-Event-ID` set to the last sequence it delivered, backing off up to 5 s. Frames at or below that
 * sequence are never delivered twice, whatever the server replays.
 */
export interface StreamHandle {
  readonly close: () => void
  /** Continue from `sequence` after the caller reloaded its state (`snapshot.required`). */
  readonly resetTo: (sequence: number) => void
}

export interface StreamCallbacks {
  readonly onFrame: (frame: SseFrame, sequence: number | undefined) => void
  readonly onState?: (state: "connecting" | "live" | "reconnecting") => void
  /** A refusal that retrying will not fix (401/403/404): the subscription stops. */
  readonly onFatal?: (message: string) => void
}

const FATAL = /answered (401|403|404|409)\b/

export const subscribe = (url: string, startAfter: number, callbacks: StreamCallbacks): StreamHandle => {
  let last = startAfter
  let closed = false
  let controller = new AbortController()
  let backoffMs = 250
  let timer: ReturnType<typeof setTimeout> | undefined
  // After `snapshot.required` the caller reloads its state; reconnecting before it calls `resetTo` would only earn
  // the same answer again.
  let held = false
  let release: (() => void) | undefined

  const connect = async () => {
    if (closed) return
    controller = new AbortController()
    callbacks.onState?.(last > 0 ? "reconnecting" : "connecting")
    const headers: Record<string, string> = { accept: "text/event-stream" }
    if (last > 0) headers["last-event-id"] = String(last)
    try {
      const { ended } = await openSse(url, headers, controller.signal, (frame) => {
        if (frame.event === "" && frame.data === "") return
        if (frame.event === "snapshot.required") held = true
        const sequence = frame.id !== undefined && /^\d+$/.test(frame.id) ? Number(frame.id) : undefined
        if (sequence !== undefined) {
          if (sequence <= last) return
          last = sequence
        }
        backoffMs = 250
        callbacks.onFrame(frame, sequence)
      })
      callbacks.onState?.("live")
      await ended
    } catch (error) {
      if (closed) return
      const message = error instanceof Error ? error.message : String(error)
      if (FATAL.test(message)) {
        closed = true
        callbacks.onFatal?.(message)
        return
      }
    }
    if (closed) return
    if (held) {
      await new Promise<void>((resolve) => {
        release = resolve
      })
      if (closed) return
      void connect()
      return
    }
    callbacks.onState?.("reconnecting")
    timer = setTimeout(connect, backoffMs)
    backoffMs = Math.min(backoffMs * 2, 5_000)
  }

  void connect()
  return {
    close: () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      controller.abort()
      release?.()
    },
    resetTo: (sequence) => {
      last = sequence
      held = false
      controller.abort()
      release?.()
      release = undefined
    }
  }
}
