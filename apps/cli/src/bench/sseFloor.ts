/**
 * The floor of `npm run bench:sse` (issue 15 target 4): a bare Node `http` server — no Effect, no Postgres, no hub —
 * holding the same SSE streams as the web (opened by the same `sseClients.ts`), that on each tick writes ONE pre-built
 * chunk to every stream of a "session": what one socket write per subscriber per prompt costs in Node and the kernel
 * (on loopback the receiving client's TCP work runs in the sender's syscall too), and nothing else. Forked by `sse.ts`
 * with an IPC channel; its CPU is read from /proc of this pid exactly as the web's.
 *
 * Routes (any token): `GET /api/sessions/:id/events?after=N` (a session stream), `GET /api/events` (the workspace
 * stream: one `session.changed` per prompt, before its session's frames). Messages, each answered with `{ id, ... }`:
 * - `listen`: `{ port }`;
 * - `tips { sessions }`: `{ tips }`, each session's last sequence so far;
 * - `run { sessions, rate, total, frames, bytes }`: `total` prompts at `rate`/s round-robin over `sessions`, each
 *   `frames` frames of `bytes` bytes in all (a real prompt's, measured by the fan-out rows), encoded and framed as one
 *   HTTP/1.1 chunk once per prompt and written with one `socket.write` per stream; answers `{ writes }` after the last.
 */
import * as Http from "node:http"
import type { Socket } from "node:net"
import { performance } from "node:perf_hooks"

type Request =
  | { readonly id: number; readonly type: "listen" }
  | { readonly id: number; readonly type: "tips"; readonly sessions: ReadonlyArray<string> }
  | {
    readonly id: number
    readonly type: "run"
    readonly sessions: ReadonlyArray<string>
    readonly rate: number
    readonly total: number
    readonly frames: number
    readonly bytes: number
  }

const streams = new Map<string, Set<Socket>>()
const workspace = new Set<Socket>()
const sequences = new Map<string, number>()

/** `text` as one chunk of a chunked HTTP/1.1 body. */
const chunk = (text: string) => {
  const body = Buffer.from(text, "latin1")
  return Buffer.concat([Buffer.from(`${body.byteLength.toString(16)}\r\n`, "latin1"), body, Buffer.from("\r\n", "latin1")])
}

const server = Http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://floor")
  const session = /^\/api\/sessions\/([^/]+)\/events$/.exec(url.pathname)?.[1]
  if (session === undefined && url.pathname !== "/api/events") {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" })
  res.write("retry: 2000\n\n")
  const socket = res.socket!
  const set = session === undefined ? workspace : streams.get(session) ?? new Set<Socket>()
  if (session !== undefined) streams.set(session, set)
  set.add(socket)
  socket.once("close", () => set.delete(socket))
})

/**
 * A prompt's frames: `frames` frames, `bytes` bytes in all, ids after the session's last, the createdAt the clients
 * time (now), as one chunk.
 */
const prompt = (session: string, frames: number, bytes: number) => {
  const first = (sequences.get(session) ?? 0) + 1
  sequences.set(session, first + frames - 1)
  const createdAt = new Date().toISOString()
  const bare = (sequence: number, pad: string) =>
    `id: ${sequence}\nevent: floor\ndata: {"sequence":${sequence},"pad":"${pad}","createdAt":"${createdAt}"}\n\n`
  let text = ""
  for (let i = 0; i < frames; i++) {
    const sequence = first + i
    const left = bytes - text.length
    const size = Math.floor(left / (frames - i))
    text += bare(sequence, "x".repeat(Math.max(0, size - bare(sequence, "").length)))
  }
  return { text, last: first + frames - 1 }
}

const run = (message: Extract<Request, { type: "run" }>) =>
  new Promise<number>((resolve) => {
    let writes = 0
    let i = 0
    const started = performance.now()
    const tick = () => {
      const session = message.sessions[i % message.sessions.length]!
      const { text, last } = prompt(session, message.frames, message.bytes)
      const changed = chunk(`event: session.changed\ndata: ${JSON.stringify({ sessionId: session, lastSequence: last })}\n\n`)
      for (const socket of workspace) socket.write(changed)
      // The floor: one pre-built buffer, one write per stream.
      const buffer = chunk(text)
      for (const socket of streams.get(session) ?? []) {
        socket.write(buffer)
        writes++
      }
      i++
      if (i === message.total) return resolve(writes)
      // Jittered within its slot (±half an interval, `rate`/s on average): ticks on an exact grid can lock in phase
      // with the kernel's scheduler tick, which samples the user / system split of the CPU time.
      setTimeout(tick, Math.max(0, started + ((i + Math.random() - 0.5) * 1000) / message.rate - performance.now()))
    }
    tick()
  })

const reply = (message: object) => process.send!(message)

process.on("message", (message: Request) => {
  switch (message.type) {
    case "listen":
      server.listen(0, "127.0.0.1", () => reply({ id: message.id, port: (server.address() as { port: number }).port }))
      return
    case "tips":
      return reply({ id: message.id, tips: message.sessions.map((session) => sequences.get(session) ?? 0) })
    case "run":
      void run(message).then((writes) => reply({ id: message.id, writes }))
      return
  }
})
process.on("disconnect", () => process.exit(0))
