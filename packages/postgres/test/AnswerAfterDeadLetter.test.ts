import { Conflict } from "@cowork/domain"
import { PgCommandQueue, PgEventLog, PgLeaseStore, PgQueueControls, PgSessionStore, PgTokens } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore, QueueControls, SessionStore, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const Stores = Layer.mergeAll(PgSessionStore.layer, PgQueueControls.layer, PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgTokens.layer)
  .pipe(Layer.provideMerge(TestDatabase.layer({ maxConnections: 20 })))

it.layer(Stores, { timeout: 60_000 })("answers racing for an ask whose answer was dead-lettered (Postgres)", (it) => {
  it.effect("three answerers at once, 12 asks: one new answer each (the others replay it or are told who), the lost one keeps no key", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionStore
      const sql = yield* SqlClient.SqlClient
      const { orgId } = yield* (yield* Tokens).createOrg("answer-race")
      const asks = yield* Effect.forEach(Array.from({ length: 12 }), () =>
        Effect.gen(function*() {
          const session = yield* sessions.create(orgId, {})
          const turn = (yield* sessions.prompt(orgId, session.id, { text: "ask" })).commandId
          return { sessionId: session.id, turn }
        }))
      const leases = yield* (yield* LeaseStore).claim("w-answer-race", 100, 60_000, 3)
      for (const ask of asks) {
        const lease = leases.find((l) => l.sessionId === ask.sessionId)!
        assert.strictEqual(Option.getOrThrow(yield* (yield* CommandQueue).next(lease)).id, ask.turn)
        yield* (yield* EventLog).append(lease, [{
          type: "question.asked",
          payload: { requestId: "que_race", questions: [{ question: "ok?" }], commandId: ask.turn },
          commandId: ask.turn,
          attempt: 1
        }])
      }
      const answer = (sessionId: string, by: string, text: string) =>
        sessions.answer(orgId, sessionId, { kind: "question_reply", requestId: "que_race", answers: [[text]], answeredBy: by, answeredVia: "web" })
      const lost = yield* Effect.forEach(asks, (ask) => answer(ask.sessionId, "first", "yes"))
      const controls = yield* QueueControls
      yield* Effect.forEach(lost, (l) => controls.deadLetter(orgId, l.commandId, "stuck"))

      const outcomes = yield* Effect.forEach(asks, (ask) =>
        Effect.all([answer(ask.sessionId, "first", "yes"), answer(ask.sessionId, "second", "no"), answer(ask.sessionId, "second", "no")].map(Effect.exit), {
          concurrency: "unbounded"
        }), { concurrency: "unbounded" })

      for (const [i, exits] of outcomes.entries()) {
        const { sessionId } = asks[i]!
        const rows = yield* sql<{ id: string; status: string; idempotency_key: string | null; answered_by: string }>`
          SELECT id, status, idempotency_key, payload->>'answeredBy' AS answered_by FROM cloud_session_commands
          WHERE session_id = ${sessionId} AND kind = 'question_reply' ORDER BY position`
        assert.deepStrictEqual(rows.map((row) => [row.id === lost[i]!.commandId, row.status, row.idempotency_key]), [
          [true, "dead", null],
          [false, "pending", "answer:question:que_race"]
        ], `${sessionId}: the lost answer and exactly one new one`)
        const winner = rows[1]!
        const created = exits.filter((exit) => Exit.isSuccess(exit) && exit.value.created)
        assert.strictEqual(created.length, 1, `${sessionId}: one answer created`)
        for (const exit of exits) {
          if (Exit.isSuccess(exit)) {
            assert.strictEqual(exit.value.commandId, winner.id, "a replay returns the winner")
          } else {
            const refused = (exit.cause.reasons[0] as { readonly error?: unknown } | undefined)?.error
            assert.instanceOf(refused, Conflict)
            assert.deepInclude((refused as Conflict).details, { reason: "answered", answeredBy: winner.answered_by })
          }
        }
      }
    }))
})
