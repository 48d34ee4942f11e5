/**
 * The SSE clients of `npm run bench:sse`, in a process of their own (forked by `sse.ts` with an IPC channel), so
 * parsing tens of thousands of frames per second competes neither with the benchmark's prompt sender nor with its
 * clock readings, and its CPU is measured on its own (/proc of this pid).
 *
 * Messages from the parent, each answered with `{ id, ... }`:
 * - `open { baseUrl, token, targets: [{ id, tip }] }`: opens one session stream per target (from `tip`) and one
 *   workspace stream; answers `{ streams }`;
 * - `measure`: from now on latencies are recorded and notifications counted;
 * - `count`: `{ frames }` received so far (over every stream, measured or not);
 * - `stop`: `{ latencies, fanout, gaps, duplicates, frames, bytes, notifications }` (bytes: session-stream data while measuring) (latencies as Float64Array), then the
 *   streams close and the process exits.
 */
import * as Http from "node:http"
import { performance } from "node:perf_hooks"

interface Target {
  readonly id: string
  readonly tip: number
}

type Request =
  | { readonly id: number; readonly type: "open"; readonly baseUrl: string; readonly token: string; readonly targets: ReadonlyArray<Target> }
  | { readonly id: number; readonly type: "measure" | "count" | "stop" }

/** Collected over every stream of this process. */
class Frames {
  latencies: Array<number> = []
  /** `session:tip` → when the workspace stream announced it (the web process got the NOTIFY; no read involved). */
  readonly notified = new Map<string, number>()
  /** Workspace announcement → the session stream's frame with that sequence (the fan-out's own delay). */
  fanout: Array<number> = []
  gaps = 0
  duplicates = 0
  frames = 0
  /** Characters (bytes: the frames are ASCII) of session-stream data received while measuring. */
  bytes = 0
  notifications = 0
  measuring = false
  record(latencyMs: number) {
    if (this.measuring) this.latencies.push(latencyMs)
  }
}

interface OpenStream {
  readonly close: () => void
}

const agent = new Http.Agent({ keepAlive: false, maxSockets: Infinity })

/**
 * A session stream over a raw socket with a minimal frame parser: checks ids are consecutive and records commit →
 * arrival per event frame.
 */
const openSessionStream = (baseUrl: string, token: string, sessionId: string, after: number, frames: Frames) =>
  new Promise<OpenStream>((resolve, reject) => {
    let last = after
    let buffer = ""
    const request = Http.get(`${baseUrl}/api/sessions/${sessionId}/events?after=${after}`, {
      agent,
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" }
    }, (response) => {
      if (response.statusCode !== 200) {
        reject(new Error(`session stream answered ${response.statusCode}`))
        response.resume()
        return
      }
      response.setEncoding("utf8")
      response.on("error", () => {})
      response.on("data", (chunk: string) => {
        const now = Date.now()
        if (frames.measuring) frames.bytes += chunk.length
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (!block.startsWith("id: ")) continue
          const id = Number(block.slice(4, block.indexOf("\n")))
          if (id <= last) frames.duplicates++
          else if (id !== last + 1) frames.gaps++
          last = Math.max(last, id)
          frames.frames++
          const at = block.lastIndexOf("\"createdAt\":\"")
          if (at >= 0) frames.record(now - Date.parse(block.slice(at + 13, block.indexOf("\"", at + 13))))
          const announced = frames.measuring ? frames.notified.get(`${sessionId}:${id}`) : undefined
          if (announced !== undefined) frames.fanout.push(performance.now() - announced)
        }
      })
      resolve({ close: () => request.destroy() })
    })
    request.on("error", reject)
  })

/** The workspace stream: one `session.changed` per notification. */
const openWorkspaceStream = (baseUrl: string, token: string, frames: Frames) =>
  new Promise<OpenStream>((resolve, reject) => {
    const request = Http.get(`${baseUrl}/api/events`, { agent, headers: { authorization: `Bearer ${token}` } }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`workspace stream answered ${response.statusCode}`))
      response.setEncoding("utf8")
      response.on("error", () => {})
      let buffer = ""
      response.on("data", (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end)
          if (block.includes("event: session.changed")) {
            const data = JSON.parse(block.slice(block.indexOf("data: ") + 6)) as { sessionId: string; lastSequence: number }
            if (frames.measuring) frames.notifications++
            frames.notified.set(`${data.sessionId}:${data.lastSequence}`, performance.now())
          }
          buffer = buffer.slice(end + 2)
        }
      })
      resolve({ close: () => request.destroy() })
    })
    request.on("error", reject)
  })

const pool = async <A>(items: ReadonlyArray<A>, limit: number, task: (item: A) => Promise<void>) => {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!)
  }))
}

const frames = new Frames()
const streams: Array<OpenStream> = []
/** Sends `message`; `sent` runs once it is handed to the channel (a large reply is flushed asynchronously). */
const reply = (message: object, sent?: () => void) => process.send!(message, undefined, {}, sent)

process.on("message", (message: Request) => {
  void (async () => {
    switch (message.type) {
      case "open": {
        await pool(message.targets, 200, async (target) => {
          streams.push(await openSessionStream(message.baseUrl, message.token, target.id, target.tip, frames))
        })
        streams.push(await openWorkspaceStream(message.baseUrl, message.token, frames))
        return reply({ id: message.id, streams: streams.length - 1 })
      }
      case "measure": {
        frames.latencies = []
        frames.fanout = []
        frames.notifications = 0
        frames.bytes = 0
        frames.measuring = true
        return reply({ id: message.id })
      }
      case "count":
        return reply({ id: message.id, frames: frames.frames })
      case "stop": {
        frames.measuring = false
        reply({
          id: message.id,
          latencies: Float64Array.from(frames.latencies),
          fanout: Float64Array.from(frames.fanout),
          gaps: frames.gaps,
          duplicates: frames.duplicates,
          frames: frames.frames,
          bytes: frames.bytes,
          notifications: frames.notifications
        }, () => {
          // Disconnecting before the reply is flushed would drop it.
          for (const stream of streams) stream.close()
          process.disconnect()
        })
        return
      }
    }
  })().catch((error) => {
    console.error(error)
    process.exit(1)
  })
})
