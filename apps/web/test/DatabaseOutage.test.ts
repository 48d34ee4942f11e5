import { appendEvents, Database, runMigrations, startEmbeddedPostgres } from "@cowork/postgres"
import { ChangeFeed } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { connect, eventData } from "../../../test/support/SseClient.ts"
import { baseUrl, orgWithToken, request, serverLayer } from "./support/WebTestServer.ts"

/** A Postgres cluster of this test file's own, so the outage drill can stop and start it. */
class Cluster extends Context.Service<Cluster, {
  readonly url: string
  readonly stop: Effect.Effect<void>
  readonly start: Effect.Effect<void>
}>()("test/DatabaseOutage/Cluster") {}

const clusterLayer = Layer.effect(Cluster, Effect.gen(function*() {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-outage-pg-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
  // Each run of the cluster in a child of the layer's scope: stopped with the layer however the file ends, a run
  // that failed half-started included.
  const layerScope = yield* Effect.scope
  let running = yield* Scope.fork(layerScope)
  const first = yield* startEmbeddedPostgres(dataDir).pipe(Scope.provide(running), Effect.orDie)
  const start = Effect.gen(function*() {
    running = yield* Scope.fork(layerScope)
    yield* startEmbeddedPostgres(dataDir, { port: first.port }).pipe(Scope.provide(running), Effect.orDie)
  })
  const stop = Effect.suspend(() => Scope.close(running, Exit.void))
  return Cluster.of({ url: first.url("postgres"), stop, start })
}))

const databaseLayer = Layer.unwrap(Effect.map(Effect.service(Cluster), (cluster) =>
  Layer.effectDiscard(runMigrations).pipe(Layer.provideMerge(Database.layer({ url: Redacted.make(cluster.url), maxConnections: 10 })))))

/** The web role over the file's own cluster; the backstop poll is out of the picture (10 minutes). */
const layer = serverLayer.pipe(
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_SSE_BACKSTOP_POLL_MS: "600000" }))),
  Layer.provideMerge(databaseLayer),
  Layer.provideMerge(clusterLayer)
)

/** Polls `effect` until it succeeds, or dies after `ms`. */
const retryFor = <A, E, R>(effect: Effect.Effect<A, E, R>, ms: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (true) {
      const exit = yield* Effect.exit(effect)
      if (Exit.isSuccess(exit)) return exit.value
      if (Date.now() > deadline) return yield* Effect.die(new Error(`still failing after ${ms} ms`))
      yield* Effect.sleep("50 millis")
    }
  })

const listening = Effect.flatMap(Effect.service(ChangeFeed), (feed) => feed.listeners).pipe(
  Effect.map((states) => states.find((s) => s.channel === "cowork_events")?.connected ?? false)
)

const appendText = (sessionId: string, text: string) =>
  appendEvents(sessionId, [{ type: "assistant.message", payload: { messageId: text, text, final: true } }], undefined)

it.layer(layer, { excludeTestServices: true, timeout: 120_000 })("database outage", (it) => {
  it.effect("while Postgres is down: 503 + Retry-After + the error shape on authenticated routes and SSE connect; back after", () =>
    Effect.scoped(Effect.gen(function*() {
      const cluster = yield* Cluster
      const { token } = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token, body: { title: "outage" } })).body.session
      const stream = yield* connect(`${yield* baseUrl}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      yield* stream.waitFor((frames) => eventData(frames).length === 1)

      yield* cluster.stop
      for (const [method, path] of [
        ["GET", "/api/sessions"],
        ["POST", "/api/sessions"],
        ["GET", `/api/sessions/${session.id}`],
        ["GET", `/api/sessions/${session.id}/events`],
        ["GET", "/api/events"]
      ] as const) {
        const response = yield* request(method, path, { token, ...(method === "POST" ? { body: {} } : {}) })
        assert.strictEqual(response.status, 503, `${method} ${path}: ${JSON.stringify(response.body)}`)
        assert.match(response.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/, `${method} ${path}: Retry-After`)
        assert.strictEqual(response.body.error.code, "unavailable", `${method} ${path}`)
        assert.isString(response.body.error.message)
      }

      yield* cluster.start
      const sql = yield* SqlClient.SqlClient
      // The open stream gets what was appended once the database is back, without waiting for the backstop poll.
      yield* retryFor(appendText(session.id, "after-restart").pipe(Effect.provideService(SqlClient.SqlClient, sql)), 20_000)
      yield* stream.waitFor((frames) => eventData(frames).some((e) => e.payload.messageId === "after-restart"), 10_000)
      const back = yield* retryFor(
        request("GET", "/api/sessions", { token }).pipe(Effect.flatMap((r) => r.status === 200 ? Effect.succeed(r) : Effect.fail(r))),
        10_000
      )
      assert.strictEqual(back.body.sessions.length, 1)
    })))

  it.effect("a LISTEN connection lost while events are appended: subscribers get what they missed as soon as it is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { token } = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token, body: { title: "listen" } })).body.session
      const stream = yield* connect(`${yield* baseUrl}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      const workspace = yield* connect(`${yield* baseUrl}/api/events`, { authorization: `Bearer ${token}` })
      yield* stream.waitFor((frames) => eventData(frames).length === 1)
      yield* retryFor(Effect.flatMap(listening, (up) => up ? Effect.void : Effect.fail("not listening")), 10_000)

      // Kill the listening backend and append while it is gone: that NOTIFY reaches nobody.
      let missed: string | undefined
      for (let round = 0; round < 10 && missed === undefined; round++) {
        yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'`
        yield* retryFor(Effect.flatMap(listening, (up) => up ? Effect.fail("still listening") : Effect.void), 10_000)
        const text = `missed-${round}`
        yield* appendText(session.id, text)
        // Only a round where the append committed before the listener came back proves the catch-up.
        if (!(yield* listening)) missed = text
        else yield* retryFor(Effect.flatMap(listening, (up) => up ? Effect.void : Effect.fail("not listening")), 10_000)
      }
      assert.isDefined(missed, "an append landed while the listener was down")
      const delivered = yield* stream.waitFor((frames) => eventData(frames).some((e) => e.payload.messageId === missed), 5_000)
      const missedSequence = eventData(delivered).find((e) => e.payload.messageId === missed)!.sequence
      // The workspace stream is told the session changed, up to (at least) the missed event.
      yield* workspace.waitFor((frames) =>
        frames.some((f) => {
          if (f.event !== "session.changed" || f.data === undefined) return false
          const change = JSON.parse(f.data) as { sessionId: string; lastSequence: number }
          return change.sessionId === session.id && change.lastSequence >= missedSequence
        }), 5_000)
    })))
})
