import { appendEvents } from "@cowork/postgres"
import { EventLog } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { sessionEvents } from "@cowork/client"
import { Effect, Fiber, Layer, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import { SqlClient } from "effect/sql"
import * as Http from "node:http"
import * as Net from "node:net"
import { WebLifecycle } from "../src/WebLifecycle.ts"
import { connect, eventData } from "../../../test/support/SseClient.ts"
import { baseUrl, layer, orgWithToken, request, serverLayer } from "./support/WebTestServer.ts"

/** The worker's side, simulated: a fenced append under a live lease. */
const workerAppend = (sessionId: string, texts: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE cloud_worker_leases SET worker_id = 'w1', epoch = 1, expires_at = now() + interval '1 minute'
      WHERE session_id = ${sessionId}`
    const last = yield* appendEvents(
      sessionId,
      texts.map((text, i) => ({ type: "assistant.message" as const, payload: { messageId: `m-${text}-${i}`, delta: text } })),
      { workerId: "w1", epoch: 1 }
    )
    assert.isDefined(last, "the fenced append was applied")
    return last!
  })

const newSession = Effect.gen(function*() {
  const { orgId, token } = yield* orgWithToken(["web"])
  const session = (yield* request("POST", "/api/sessions", { token, body: { title: "sse" } })).body.session
  return { orgId, token, id: session.id as string }
})

const sequences = (frames: Parameters<typeof eventData>[0]) => eventData(frames).map((e) => e.sequence)

it.layer(layer, { excludeTestServices: true })("session events over SSE", (it) => {
  it.effect("streams the log, then live events; a resumed stream has no gap and no duplicate", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      const url = `${yield* baseUrl}/api/sessions/${id}/events`
      const auth = { authorization: `Bearer ${token}` }
      const seen: Array<number> = []

      const first = yield* connect(url, auth)
      assert.strictEqual(first.status, 200)
      assert.include(first.headers.get("content-type") ?? "", "text/event-stream")
      assert.isNotNull(first.headers.get("x-request-id"))
      const initial = yield* first.waitFor((frames) => sequences(frames).includes(1))
      assert.strictEqual(initial[0]!.retry, "2000", "a retry hint comes first")
      const created = eventData(initial)[0]!
      assert.strictEqual(created.type, "session.created")
      assert.match(created.eventId, /^evt_/)
      assert.deepStrictEqual(created.payload, { title: "sse", profileName: "default" })
      assert.strictEqual(initial.find((f) => f.id === "1")!.event, "session.created")

      yield* request("POST", `/api/sessions/${id}/prompt`, { token, body: { text: "go" } })
      yield* workerAppend(id, ["a", "b", "c"])
      const live = yield* first.waitFor((frames) => sequences(frames).includes(5))
      seen.push(...sequences(live))
      yield* first.close

      // Appended while disconnected.
      yield* workerAppend(id, ["d", "e"])
      const resumed = yield* connect(url, { ...auth, "last-event-id": String(seen[seen.length - 1]) })
      yield* workerAppend(id, ["f"])
      const after = yield* resumed.waitFor((frames) => sequences(frames).includes(8))
      seen.push(...sequences(after))
      assert.deepStrictEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8], "every sequence exactly once, in order")
      yield* resumed.close
    }))

  it.effect("the typed client's reader decodes the stream: replay then live, resumable after a sequence", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      const options = { baseUrl: yield* baseUrl, token }
      yield* workerAppend(id, ["a", "b"])
      const live = yield* sessionEvents(options, id).pipe(Stream.take(5), Stream.runCollect, Effect.forkChild)
      yield* workerAppend(id, ["c", "d"])
      const items = yield* Fiber.join(live)
      assert.deepStrictEqual(items.map((item) => item._tag === "Event" ? [item.event.sequence, item.event.type] : item._tag), [
        [1, "session.created"], [2, "assistant.message"], [3, "assistant.message"], [4, "assistant.message"], [5, "assistant.message"]
      ])
      const resumed = yield* sessionEvents(options, id, 3).pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(resumed.map((item) => item._tag === "Event" ? item.event.sequence : -1), [4, 5])
      const other = yield* orgWithToken(["web"])
      const refused = yield* Effect.flip(sessionEvents({ ...options, token: other.token }, id).pipe(Stream.runDrain))
      assert.strictEqual((refused as { response?: { status: number } }).response?.status, 404, "another org's stream is a 404")
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.effect("?after wins over Last-Event-ID; a cursor ahead of the log is 409; bad cursors are 400", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      yield* workerAppend(id, ["a", "b", "c", "d"])
      const url = `${yield* baseUrl}/api/sessions/${id}/events`
      const auth = { authorization: `Bearer ${token}` }
      const stream = yield* connect(`${url}?after=3`, { ...auth, "last-event-id": "1" })
      const frames = yield* stream.waitFor((f) => sequences(f).includes(5))
      assert.deepStrictEqual(sequences(frames), [4, 5])
      yield* stream.close

      const ahead = yield* request("GET", `/api/sessions/${id}/events?after=99`, { token })
      assert.strictEqual(ahead.status, 409)
      assert.strictEqual(ahead.body.error.code, "conflict")
      const aheadHeader = yield* request("GET", `/api/sessions/${id}/events`, { token, headers: { "last-event-id": "6" } })
      assert.strictEqual(aheadHeader.status, 409)
      const bad = yield* request("GET", `/api/sessions/${id}/events?after=-1`, { token })
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.body.error.details.field, "after")
    }))

  it.effect("a cursor older than retention gets snapshot.required", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      yield* workerAppend(id, ["a", "b", "c", "d", "e"])
      const eventLog = yield* EventLog
      yield* eventLog.prune(id, 4)
      const url = `${yield* baseUrl}/api/sessions/${id}/events`
      const pruned = yield* connect(`${url}?after=1`, { authorization: `Bearer ${token}` })
      assert.strictEqual(pruned.status, 200)
      const frames = yield* pruned.waitFor((f) => f.some((frame) => frame.event === "snapshot.required"))
      const snapshot = frames.find((frame) => frame.event === "snapshot.required")!
      assert.deepStrictEqual(JSON.parse(snapshot.data!), {
        reason: "cursor_pruned",
        afterSequence: 1,
        earliestSequence: 4,
        latestSequence: 6
      })
      assert.deepStrictEqual(sequences(frames), [], "no events are sent across the gap")
      yield* pruned.ended

      const edge = yield* connect(`${url}?after=3`, { authorization: `Bearer ${token}` })
      const edgeFrames = yield* edge.waitFor((f) => sequences(f).includes(6))
      assert.deepStrictEqual(sequences(edgeFrames), [4, 5, 6], "a cursor right before the retained log replays it")
      yield* edge.close
    }))

  it.effect("N concurrent subscribers on one process share ONE LISTEN connection", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const sessions = yield* Effect.all(Array.from({ length: 3 }, () => newSession))
      const url = yield* baseUrl
      const connections = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => sessions[i % sessions.length]!),
        (s) => connect(`${url}/api/sessions/${s.id}/events`, { authorization: `Bearer ${s.token}` }),
        { concurrency: "unbounded" }
      )
      yield* Effect.forEach(connections, (c) => c.waitFor((f) => sequences(f).includes(1)), { discard: true })
      yield* Effect.forEach(sessions, (s) => workerAppend(s.id, ["x"]), { discard: true })
      yield* Effect.forEach(connections, (c) => c.waitFor((f) => sequences(f).includes(2)), { discard: true })
      const listeners = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
      assert.strictEqual(listeners[0]!.n, 1)
      yield* Effect.forEach(connections, (c) => c.close, { discard: true })
    }))

  it.effect("GET /api/events carries the org's session changes only", () =>
    Effect.gen(function*() {
      const mine = yield* newSession
      const theirs = yield* newSession
      const url = `${yield* baseUrl}/api/events`
      const stream = yield* connect(url, { authorization: `Bearer ${mine.token}` })
      assert.strictEqual(stream.status, 200)
      yield* stream.waitFor((f) => f.some((frame) => frame.retry !== undefined))
      yield* workerAppend(theirs.id, ["other"])
      yield* workerAppend(mine.id, ["mine"])
      const changesOf = (frames: ReadonlyArray<{ event?: string; data?: string }>) =>
        frames.filter((frame) => frame.event === "session.changed").map((frame) => JSON.parse(frame.data!))
      // The creation notifications (lastSequence 1) may still be in flight when the stream opens.
      const frames = yield* stream.waitFor((f) => changesOf(f).some((c) => c.sessionId === mine.id && c.lastSequence === 2))
      const changes = changesOf(frames)
      assert.isTrue(changes.every((c) => c.sessionId === mine.id), "another org's sessions never appear")
      assert.deepStrictEqual(changes[changes.length - 1], { sessionId: mine.id, lastSequence: 2 })
      yield* stream.close
    }))

  it.effect("a burst of commits, one longer than a read batch, reaches every stream complete and in order", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      const url = `${yield* baseUrl}/api/sessions/${id}/events`
      const auth = { authorization: `Bearer ${token}` }
      const streams = [yield* connect(url, auth), yield* connect(url, auth), yield* connect(`${url}?after=1`, auth)]
      yield* Effect.forEach(streams.slice(0, 2), (s) => s.waitFor((f) => sequences(f).includes(1)), { discard: true })
      // 450 events in one commit (more than two read batches of 200), then four small commits back to back.
      let tip = yield* workerAppend(id, Array.from({ length: 450 }, (_, i) => `burst-${i}`))
      for (let i = 0; i < 4; i++) tip = yield* workerAppend(id, [`tail-${i}-a`, `tail-${i}-b`])
      assert.strictEqual(tip, 1 + 450 + 8)
      for (const [i, stream] of streams.entries()) {
        const frames = yield* stream.waitFor((f) => sequences(f).includes(tip), 15_000)
        const from = i === 2 ? 2 : 1
        assert.deepStrictEqual(sequences(frames), Array.from({ length: tip - from + 1 }, (_, k) => from + k), `stream ${i}: every sequence once, in order`)
        const texts = eventData(frames).filter((e) => e.type === "assistant.message").map((e) => (e.payload as { delta: string }).delta)
        assert.strictEqual(texts[0], "burst-0")
        assert.strictEqual(texts[449], "burst-449")
        assert.strictEqual(texts[457], "tail-3-b")
        yield* stream.close
      }
    }))

  it.effect("a client that stops reading while ~12 MB are appended: it gets every frame in order when it reads again (resuming by id if its stream was ended), and a fast stream is never ended", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      const base = yield* baseUrl
      const url = `${base}/api/sessions/${id}/events`
      const auth = { authorization: `Bearer ${token}` }
      const fast = yield* connect(url, auth)
      // The slow client: node's HTTP client, paused after the first frame (its socket is then not read any more).
      const slow = yield* Effect.promise(() =>
        new Promise<{ readonly text: () => string; readonly resume: (tip: number) => Promise<void> }>((resolve, reject) => {
          const request = Http.get(url, { headers: { ...auth, accept: "text/event-stream" } }, (response) => {
            let text = ""
            let paused = false
            let tip = Number.POSITIVE_INFINITY
            let ended: () => void = () => {}
            // The end of the stream, or (without a bound) the whole backlog.
            const end = new Promise<void>((done) => (ended = done))
            response.setEncoding("utf8")
            response.on("data", (chunk: string) => {
              text += chunk
              if (text.includes(`id: ${tip}\n`)) ended()
              if (!paused && text.includes("id: 1\n")) {
                paused = true
                response.pause()
              }
            })
            response.on("end", () => ended())
            response.on("error", reject)
            resolve({
              text: () => text,
              resume: (last) => {
                tip = last
                response.resume()
                return end
              }
            })
          })
          request.on("error", reject)
        })
      )
      yield* fast.waitFor((f) => sequences(f).includes(1))
      // ~12 MB of events in 6 commits of ~2 MB, each read on its own (the fast stream has it before the next commit):
      // far more than the socket buffers plus the 1 MiB a stream may have waiting in the process, and each read larger
      // than that buffer. A stream with nothing waiting takes the frames that fit and the rest at its client's pace
      // (the fast one: at once; the paused one: as its socket drains, or it is ended after 10–15 s of taking nothing).
      // That the process holds at most the buffer per stream is SessionFanout's test (it can look at the sink).
      const big = "x".repeat(100_000)
      let tip = 1
      for (let i = 0; i < 6; i++) {
        tip = yield* workerAppend(id, Array.from({ length: 20 }, (_, k) => `${i}-${k}-${big}`))
        yield* fast.waitFor((f) => sequences(f).includes(tip), 30_000)
      }
      assert.deepStrictEqual(sequences(fast.frames()), Array.from({ length: tip }, (_, k) => k + 1))
      yield* fast.close
      // Reading again, the slow client gets what was queued and the rest as it takes it (or, if its stream was ended
      // meanwhile, what was queued and then the end, short of the tip).
      yield* Effect.promise(() => slow.resume(tip))
      const got = [...slow.text().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
      assert.isAbove(got.length, 0)
      assert.deepStrictEqual(got, Array.from({ length: got.length }, (_, k) => k + 1), "what it got has no gap")
      if (got[got.length - 1]! < tip) {
        const resumed = yield* connect(url, { ...auth, "last-event-id": String(got[got.length - 1]) })
        const rest = yield* resumed.waitFor((f) => sequences(f).includes(tip), 30_000)
        assert.deepStrictEqual(sequences(rest), Array.from({ length: tip - got.length }, (_, k) => got.length + k + 1), "the rest, no gap")
        yield* resumed.close
      }
    }))

  it.effect("on the wire: HTTP/1.1 gets exact chunked framing (frames written straight to the socket), HTTP/1.0 the bare frames", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      const { hostname, port } = new URL(yield* baseUrl)
      /** A raw connection sending `GET` in `version`: everything it received, and a wait for a condition on it. */
      const raw = (version: string) => {
        let text = ""
        const waiters: Array<() => void> = []
        const socket = Net.connect(Number(port), hostname, () =>
          socket.write(`GET /api/sessions/${id}/events HTTP/${version}\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`))
        socket.setEncoding("latin1")
        socket.on("data", (chunk: string) => {
          text += chunk
          for (const waiter of waiters.splice(0)) waiter()
        })
        const waitFor = (done: (text: string) => boolean) =>
          Effect.promise(() =>
            new Promise<string>((resolve) => {
              const check = () => (done(text) ? resolve(text) : waiters.push(check))
              check()
            })
          )
        return { socket, waitFor }
      }
      const a = raw("1.1")
      const b = raw("1.0")
      yield* a.waitFor((text) => text.includes("id: 1\n"))
      yield* b.waitFor((text) => text.includes("id: 1\n"))
      // Live frames after the headers went out: the ones written straight to the socket.
      yield* workerAppend(id, ["one", "two", "three"])
      const tip = yield* workerAppend(id, ["four"])
      const complete = (text: string) => text.includes(`id: ${tip}\n`) && /\n\n(\r\n)?$/.test(text)
      const t11 = yield* a.waitFor(complete)
      const t10 = yield* b.waitFor(complete)
      a.socket.destroy()
      b.socket.destroy()
      // HTTP/1.1: a chunked body whose every chunk is `<hex size>\r\n<size bytes>\r\n`, and the frames in it.
      const [head11, body11] = [t11.slice(0, t11.indexOf("\r\n\r\n")), t11.slice(t11.indexOf("\r\n\r\n") + 4)]
      assert.match(head11, /^HTTP\/1\.1 200/)
      assert.match(head11, /transfer-encoding: chunked/i)
      let at = 0
      let decoded = ""
      while (at < body11.length) {
        const lineEnd = body11.indexOf("\r\n", at)
        assert.isAbove(lineEnd, at, "a chunk size line")
        const size = Number.parseInt(body11.slice(at, lineEnd), 16)
        assert.isAbove(size, 0, "no terminating chunk: the stream is still open")
        decoded += body11.slice(lineEnd + 2, lineEnd + 2 + size)
        assert.strictEqual(body11.slice(lineEnd + 2 + size, lineEnd + 4 + size), "\r\n", "each chunk ends with CRLF")
        at = lineEnd + 4 + size
      }
      const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
      assert.deepStrictEqual(ids(decoded), Array.from({ length: tip }, (_, k) => k + 1))
      assert.isTrue(decoded.startsWith("retry: 2000\n\n"))
      // HTTP/1.0: no chunked encoding, the bare frames.
      const [head10, body10] = [t10.slice(0, t10.indexOf("\r\n\r\n")), t10.slice(t10.indexOf("\r\n\r\n") + 4)]
      assert.match(head10, /^HTTP\/1\.1 200/)
      assert.notMatch(head10, /transfer-encoding/i)
      assert.strictEqual(body10, decoded, "the same bytes, unframed")
    }))

  it.effect("ends open streams, answers SSE with 503 + Retry-After and /readyz with a draining check", () =>
    Effect.gen(function*() {
      const { token, id } = yield* newSession
      // A second web process on the same database, drained while the first keeps serving.
      yield* Effect.gen(function*() {
        const url = yield* baseUrl
        const lifecycle = yield* WebLifecycle
        const stream = yield* connect(`${url}/api/sessions/${id}/events`, { authorization: `Bearer ${token}` })
        yield* stream.waitFor((f) => sequences(f).includes(1))
        yield* lifecycle.beginDrain
        yield* stream.ended
        const sse = yield* request("GET", `/api/sessions/${id}/events`, { token })
        assert.strictEqual(sse.status, 503)
        assert.strictEqual(sse.headers.get("retry-after"), "2")
        assert.strictEqual(sse.body.error.code, "unavailable")
        const ready = yield* request("GET", "/readyz")
        assert.strictEqual(ready.status, 503)
        assert.isFalse(ready.body.ok)
        assert.deepInclude(ready.body.checks, { name: "draining", status: "error", detail: "shutting down" })
        assert.strictEqual((yield* request("GET", "/healthz")).status, 200)
      }).pipe(Effect.provide(Layer.fresh(serverLayer)))
      assert.strictEqual((yield* request("GET", "/readyz")).status, 200, "the other process is unaffected")
    }))
})
