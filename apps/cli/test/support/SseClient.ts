import { openSse, type SseFrame } from "@cowork/client"
import { Effect } from "effect"

export type { SseFrame }

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
