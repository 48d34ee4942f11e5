import { ChannelStore, EventLog, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import { onFreshStore } from "../../services/test/support/ControlPlaneHarness.ts"
import { claimOne, newOrg, prompt } from "../../services/test/support/ControlPlaneFixtures.ts"
import { pgHarness } from "./support/PgHarness.ts"

/**
 * The outbox invariant on Postgres: a bound session's delivered event and its delivery commit together. When either
 * insert fails, neither is written (the sequence does not move either); once both can be written, both are.
 */

const counts = (sessionId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql.unsafe<{ events: number; deliveries: number; last: number }>(
      `SELECT (SELECT count(*)::int FROM cloud_session_events WHERE session_id = $1) AS events,
              (SELECT count(*)::int FROM cloud_channel_deliveries WHERE session_id = $1) AS deliveries,
              (SELECT last_sequence::int FROM cloud_session_projections WHERE session_id = $1) AS last`,
      [sessionId]
    )
    return row!
  }).pipe(Effect.orDie)

const failInsertsInto = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION cowork_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
    yield* sql.unsafe(`CREATE TRIGGER cowork_test_refuse BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION cowork_test_refuse()`)
    return sql.unsafe(`DROP TRIGGER cowork_test_refuse ON ${table}`).pipe(Effect.orDie, Effect.asVoid)
  }).pipe(Effect.orDie)

describe("channel outbox: same transaction as the event (postgres)", () => {
  for (const table of ["cloud_channel_deliveries", "cloud_session_events"]) {
    it.effect(`a failing insert into ${table} writes neither the event nor its delivery`, () =>
      onFreshStore(pgHarness, Effect.gen(function*() {
        const channels = yield* ChannelStore
        const orgId = yield* newOrg
        const binding = yield* channels.createBinding(orgId, { providerKind: "slack", providerId: "slack-main", displayName: "s", externalTarget: "C1" })
        const session = yield* (yield* SessionStore).create(orgId, {})
        yield* channels.bindSession(orgId, binding.id, "thread-1", session.id)
        yield* prompt({ orgId, sessionId: session.id })
        const lease = yield* claimOne("w1", session.id)
        const before = yield* counts(session.id)

        const restore = yield* failInsertsInto(table)
        const reply = { type: "assistant.message" as const, payload: { messageId: "m1", text: "done", final: true } }
        const failed = yield* Effect.exit((yield* EventLog).append(lease, [reply]))
        assert.isTrue(Exit.isFailure(failed), "the append fails")
        assert.deepStrictEqual(yield* counts(session.id), before, "nothing of the batch was written")

        yield* restore
        yield* (yield* EventLog).append(lease, [reply])
        const after = yield* counts(session.id)
        assert.deepStrictEqual(after, { events: before.events + 1, deliveries: before.deliveries + 1, last: before.last + 1 })
      }).pipe(Effect.orDie)))
  }
})
