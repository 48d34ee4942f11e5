import { Database, PgCommandQueue, PgEventLog, PgLeaseStore, PgQueueControls, PgSessionStore, PgTokens, runMigrations } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore, QueueControls, SessionStore, Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { within } from "../../../test/support/Eventually.ts"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"

const TTL = 60_000

// Each role its own client, as in production: the pool multiplexes statements over its connections, so a statement
// waiting on a lock would also hold up whatever the pool queued behind it on that connection (the polls below).
const client = (url: string) => Database.layer({ url: Redacted.make(url), maxConnections: 4 })
/** The test's own view of the database: set-up and checks. */
const observer = (url: string) =>
  Layer.mergeAll(PgSessionStore.layer, PgTokens.layer, PgLeaseStore.layer, PgEventLog.layer).pipe(
    Layer.provideMerge(Layer.effectDiscard(runMigrations).pipe(Layer.provideMerge(client(url))))
  )

/** Runs `body` on a fresh database with an operator's queue controls (a web process) and an owner's queue (a worker). */
const racing = <A, E>(
  body: (roles: { readonly controls: QueueControls["Service"]; readonly queue: CommandQueue["Service"] }) => Effect.Effect<
    A,
    E,
    SessionStore | Tokens | LeaseStore | EventLog | SqlClient.SqlClient
  >
) =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const checks = yield* Layer.build(observer(url))
    const web = yield* Layer.build(PgQueueControls.layer.pipe(Layer.provide(client(url))))
    const worker = yield* Layer.build(PgCommandQueue.layer.pipe(Layer.provide(client(url))))
    return yield* body({ controls: Context.get(web, QueueControls), queue: Context.get(worker, CommandQueue) }).pipe(
      Effect.provideContext(checks)
    )
  }).pipe(Effect.scoped)

/** Sessions of a new org, each with two pending prompts (`first`, then `second`) and leased by one worker. */
const leasedSessions = (count: number) =>
  Effect.gen(function*() {
    const { orgId } = yield* (yield* Tokens).createOrg("race")
    const sessions = yield* SessionStore
    const made = yield* Effect.forEach(Array.from({ length: count }), () =>
      Effect.gen(function*() {
        const session = yield* sessions.create(orgId, {})
        const first = (yield* sessions.prompt(orgId, session.id, { text: "first" })).commandId
        const second = (yield* sessions.prompt(orgId, session.id, { text: "second" })).commandId
        return { sessionId: session.id, first, second }
      }))
    const leases = yield* (yield* LeaseStore).claim(`w-${orgId}`, count, TTL, 3)
    assert.strictEqual(leases.length, count)
    return made.map((session) => ({ ...session, orgId, lease: leases.find((lease) => lease.sessionId === session.sessionId)! }))
  }).pipe(Effect.orDie)

/** Whether a statement whose text contains `fragment` is waiting on a row lock. */
const waitingOnLock = (fragment: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
      [fragment]
    )
    return Number(rows[0]!.n) > 0
  }).pipe(Effect.orDie)

/** The start statement's text (its `started` CTE), and the dead-letter's two statements. */
const START_STATEMENT = "started AS ("
const DEAD_LETTER_UPDATE = "SET status = 'dead', last_error"
const DEAD_LETTER_PROJECTION_LOCK = "SELECT status FROM cloud_session_projections WHERE session_id = $1 FOR UPDATE"

/**
 * Holds the session's projection row locked (as a concurrent append would) until `release` completes: the writes
 * that need it queue up behind it in a known order.
 */
const holdProjection = (sessionId: string, release: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const locked = yield* Deferred.make<void>()
    const holder = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
      yield* sql.unsafe(`SELECT 1 FROM cloud_session_projections WHERE session_id = $1 FOR UPDATE`, [sessionId])
      yield* Deferred.succeed(locked, undefined)
      yield* Deferred.await(release)
    })).pipe(Effect.orDie))
    yield* Deferred.await(locked)
    return holder
  })

const commandState = (commandId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ status: string; started: boolean }>(
      `SELECT status, started_at IS NOT NULL AS started FROM cloud_session_commands WHERE id = $1`,
      [commandId]
    )
    return rows[0]!
  }).pipe(Effect.orDie)

/** The session's command and status events, as `[type, payload]`. */
const commandEvents = (sessionId: string) =>
  Effect.gen(function*() {
    const events = yield* (yield* EventLog).read(sessionId, 0, 100)
    return events
      .filter((event) => event.type.startsWith("command.") || event.type === "session.status")
      .map((event): readonly [string, unknown] => [event.type, event.payload])
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? (exit.cause.reasons[0] as { readonly error?: { readonly _tag?: string; readonly details?: unknown } } | undefined)?.error : undefined

/**
 * An operator dead-lettering a pending command while its session's owner starts its oldest pending command, on real
 * Postgres connections: exactly one of them wins; a dead-lettered command never runs; when the dead-letter wins, the
 * owner's start goes on to the next command in the same call (it is not left for a later pass).
 */
describe("dead-letter racing a worker's start of the same command", () => {
  it.live("the dead-letter commits first while the start waits on the command: the start takes the next command", () =>
    racing(({ controls, queue }) => Effect.gen(function*() {
      const [session] = yield* leasedSessions(1)
      const { sessionId, first, second, orgId, lease } = session!
      const release = yield* Deferred.make<void>()
      const holder = yield* holdProjection(sessionId, release)
      // The dead-letter marks `first` dead (holding its row), then waits for the projection row.
      const deadLetter = yield* Effect.forkChild(Effect.exit(controls.deadLetter(orgId, first, "poison")))
      yield* within(waitingOnLock(DEAD_LETTER_PROJECTION_LOCK), "the dead-letter waits for the projection row")
      // The start picked `first` and waits for its row lock.
      const start = yield* Effect.forkChild(queue.start(lease))
      yield* within(waitingOnLock(START_STATEMENT), "the start waits for the first command's row")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)

      assert.isTrue(Exit.isSuccess(yield* Fiber.join(deadLetter)), "the dead-letter won")
      const started = yield* Fiber.join(start)
      assert.strictEqual(Option.getOrThrow(started).id, second, "the start went on to the next pending command")
      assert.deepStrictEqual(yield* commandState(first), { status: "dead", started: false })
      assert.deepStrictEqual(yield* commandState(second), { status: "running", started: true })
      assert.deepStrictEqual(yield* commandEvents(sessionId), [
        ["command.dead_lettered", { commandId: first, kind: "prompt", reason: "poison", cause: "operator" }],
        ["session.status", { status: "running", commandId: second }]
      ])
    })), 60_000)

  it.live("the start commits first while the dead-letter waits on the command: the dead-letter is refused and writes nothing", () =>
    racing(({ controls, queue }) => Effect.gen(function*() {
      const [session] = yield* leasedSessions(1)
      const { sessionId, first, orgId, lease } = session!
      const release = yield* Deferred.make<void>()
      const holder = yield* holdProjection(sessionId, release)
      // The start marks `first` running (holding its row), then waits for the projection row.
      const start = yield* Effect.forkChild(queue.start(lease))
      yield* within(waitingOnLock(START_STATEMENT), "the start waits for the projection row")
      const deadLetter = yield* Effect.forkChild(Effect.exit(controls.deadLetter(orgId, first, "poison")))
      yield* within(waitingOnLock(DEAD_LETTER_UPDATE), "the dead-letter waits for the first command's row")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)

      assert.strictEqual(Option.getOrThrow(yield* Fiber.join(start)).id, first, "the start won")
      const refused = failureOf(yield* Fiber.join(deadLetter))
      assert.strictEqual(refused?._tag, "Conflict")
      assert.deepInclude(refused?.details as object, { field: "status", status: "running" })
      assert.deepStrictEqual(yield* commandState(first), { status: "running", started: true })
      assert.deepStrictEqual(yield* commandEvents(sessionId), [["session.status", { status: "running", commandId: first }]])
    })), 60_000)

  it.live("free races on 24 sessions: exactly one wins on each; nothing dead-lettered ran; no deadlock", () =>
    racing(({ controls, queue }) => Effect.gen(function*() {
      const sessions = yield* leasedSessions(24)
      // Every other session issues the start first, so both orders of arrival occur.
      const outcomes = yield* Effect.forEach(sessions, (session, index) =>
        Effect.gen(function*() {
          const deadLetter = Effect.exit(controls.deadLetter(session.orgId, session.first, "race"))
          const started = queue.start(session.lease)
          if (index % 2 === 0) return yield* Effect.all({ deadLetter, started }, { concurrency: "unbounded" })
          const [startedFirst, deadLetterSecond] = yield* Effect.all([started, deadLetter], { concurrency: "unbounded" })
          return { deadLetter: deadLetterSecond, started: startedFirst }
        }), { concurrency: "unbounded" })
      for (const [index, outcome] of outcomes.entries()) {
        const { sessionId, first, second } = sessions[index]!
        const startedId = Option.getOrThrow(outcome.started).id
        const events = yield* commandEvents(sessionId)
        if (Exit.isSuccess(outcome.deadLetter)) {
          assert.strictEqual(startedId, second, `${sessionId}: the dead-letter won, the start took the next command`)
          assert.deepStrictEqual(yield* commandState(first), { status: "dead", started: false })
          assert.deepStrictEqual(events.map(([type]) => type), ["command.dead_lettered", "session.status"])
        } else {
          assert.strictEqual(failureOf(outcome.deadLetter)?._tag, "Conflict", `${sessionId}: refused as running`)
          assert.strictEqual(startedId, first, `${sessionId}: the start won`)
          assert.deepStrictEqual(yield* commandState(first), { status: "running", started: true })
          assert.deepStrictEqual(events.map(([type]) => type), ["session.status"])
        }
      }
    })), 60_000)
})
