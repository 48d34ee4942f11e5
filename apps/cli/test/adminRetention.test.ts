import { Database } from "@cowork/postgres"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { runCli, runCliExit } from "../../../test/support/CoworkProcess.ts"

/** `cowork admin retention run` as a real process against a fresh database (history backdated in SQL). */

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!)

const scenario = (url: string) =>
  Effect.gen(function*() {
    const env = { OPEN_COWORK_DATABASE_URL: url }
    yield* runCli(["migrate"], env)
    const sql = yield* SqlClient.SqlClient
    // Two sessions of one org: 3 acked commands and 6 events each, 30 days old; one old pending command on the first;
    // one fresh acked command and event on the second.
    const seed = `
      INSERT INTO cloud_orgs (id, name) VALUES ('org_ret', 'ret');
      INSERT INTO cloud_sessions (id, org_id, title) SELECT 'ses_ret_' || g, 'org_ret', 't' FROM generate_series(1, 2) g;
      INSERT INTO cloud_session_projections (session_id, org_id, last_sequence, projected_sequence)
        SELECT 'ses_ret_' || g, 'org_ret', 6 + (g - 1), 6 + (g - 1) FROM generate_series(1, 2) g;
      INSERT INTO cloud_worker_leases (session_id) SELECT 'ses_ret_' || g FROM generate_series(1, 2) g;
      INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, created_at, completed_at)
        SELECT 'cmd_ret_' || g || '_' || k, 'ses_ret_' || g, 'org_ret', 'prompt', '{}', 'acked', now() - interval '30 days', now() - interval '30 days'
        FROM generate_series(1, 2) g, generate_series(1, 3) k;
      INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, created_at)
        VALUES ('cmd_ret_open', 'ses_ret_1', 'org_ret', 'prompt', '{}', 'pending', now() - interval '30 days');
      INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, completed_at)
        VALUES ('cmd_ret_new', 'ses_ret_2', 'org_ret', 'prompt', '{}', 'acked', now());
      INSERT INTO cloud_session_events (session_id, sequence, event_id, type, payload, created_at)
        SELECT 'ses_ret_' || g, e, 'evt_' || g || '_' || e, 'assistant.message', '{}', now() - interval '30 days'
        FROM generate_series(1, 2) g, generate_series(1, 6) e;
      INSERT INTO cloud_session_events (session_id, sequence, event_id, type, payload) VALUES ('ses_ret_2', 7, 'evt_new', 'session.idle', '{}')
    `
    for (const statement of seed.split(";\n")) yield* sql.unsafe(statement).pipe(Effect.orDie)

    const refused = yield* runCliExit(["admin", "retention", "run", "--batch", "0"], env)
    assert.notStrictEqual(refused.code, 0)
    assert.include(refused.stdout + refused.stderr, "--batch must be between 1 and 10000")

    const nothing = json((yield* runCli(["admin", "retention", "run"], env)).stdout)
    assert.deepInclude(nothing, { commandsDeleted: 0, eventsDeleted: 0, sessions: 2 }, "nothing configured: keep everything")

    const report = json((yield* runCli(["admin", "retention", "run", "--commands-days", "7", "--batch", "1"], {
      ...env,
      OPEN_COWORK_CLOUD_RETENTION_EVENT_DAYS: "7"
    })).stdout)
    assert.deepInclude(report, {
      policy: { commandDays: 7, eventDays: 7, orgId: null },
      batches: 3,
      sessions: 2,
      commandsDeleted: 6,
      eventsDeleted: 12
    })
    assert.isNumber(report.rowsDeletedPerSecond)
    const commands = yield* sql<{ id: string }>`SELECT id FROM cloud_session_commands ORDER BY id`.pipe(Effect.orDie)
    assert.deepStrictEqual(commands.map((c) => c.id), ["cmd_ret_new", "cmd_ret_open"])
    const bounds = yield* sql<{ session_id: string; earliest_sequence: string }>`
      SELECT session_id, earliest_sequence FROM cloud_session_projections ORDER BY session_id`.pipe(Effect.orDie)
    assert.deepStrictEqual(bounds.map((b) => [b.session_id, Number(b.earliest_sequence)]), [["ses_ret_1", 7], ["ses_ret_2", 7]])
  })

it.live("deletes old acked commands and prunes old events in batches; keeps open and recent ones; bounded flags", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    return yield* scenario(url).pipe(Effect.provide(
      Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "cli-test" })
    ))
  }), 120_000)
