import { makeFrameReader, openSse, type SseFrame } from "@cowork/client"
import { Effect } from "effect"

export type { SseFrame }

/** A minimal SSE reader over fetch: frames are parsed as they arrive; `close` aborts the connection. */
export interface SseConnection {
  readonly status: number
  readonly headers: Headers
  /** Waits (up to `timeoutMs`) until `predicate` holds for the frames received so far. */
  readonly waitFor: (predicate: (frames: ReadonlyArray<SseFrame>) => boolean, timeoutMs?: number) => Effect.Effect<ReadonlyArray<SseFrame>>
  readonly frames: () => ReadonlyArray<SseFrame>
  /** Resolves when the server ends the stream. */
  readonly ended: Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

export const connect = (url: string, headers: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<SseConnection> => {
      const controller = new AbortController()
      const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: controller.signal })
      const frames: Array<SseFrame> = []
      let listeners: Array<() => void> = []
      const notify = () => {
        const current = listeners
        listeners = []
        for (const listener of current) listener()
      }
      let endedResolve: () => void = () => {}
      const endedPromise = new Promise<void>((resolve) => {
        endedResolve = resolve
      })
      const pump = async () => {
        if (response.body === null) return
        const parser = makeFrameReader((frame) => {
          frames.push(frame)
          notify()
        })
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
        try {
          while (true) {
            const { done, value } = await reader.read()
            if (done) break
            parser.feed(value)
          }
        } catch {
          // aborted by close
        }
        endedResolve()
        notify()
      }
      void pump()
      const waitFor = (predicate: (frames: ReadonlyArray<SseFrame>) => boolean, timeoutMs = 5_000) =>
        Effect.promise(() =>
          new Promise<ReadonlyArray<SseFrame>>((resolve, reject) => {
            const deadline = setTimeout(() => reject(new Error(`timed out waiting for SSE frames; got ${JSON.stringify(frames)}`)), timeoutMs)
            const check = () => {
              if (predicate(frames)) {
                clearTimeout(deadline)
                resolve([...frames])
              } else {
                listeners.push(check)
              }
            }
            check()
          })
        )
      return {
        status: response.status,
        headers: response.headers,
        waitFor,
        frames: () => [...frames],
        ended: Effect.promise(() => endedPromise),
        close: Effect.sync(() => controller.abort())
      }
    }),
    (connection) => connection.close
  )

/** The event frames (those carrying an `id`), as parsed `data`. */
export const eventData = (frames: ReadonlyArray<SseFrame>) =>
  frames.filter((f) => f.id !== undefined && f.data !== undefined).map((f) => JSON.parse(f.data!) as {
    sequence: number
    type: string
    eventId: string
    payload: any
    createdAt: string
  })

/**
 * Opens an SSE stream and calls `onFrame` for every frame until the scope closes (which aborts the request).
 * Fails if the response is not a 200 event stream.
 */
export const subscribe = (url: string, headers: Record<string, string>, onFrame: (frame: SseFrame) => void) =>
  Effect.gen(function*() {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    yield* Effect.tryPromise(() => openSse(url, headers, controller.signal, onFrame)).pipe(Effect.orDie)
  })
