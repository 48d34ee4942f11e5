import { deliveryDrafts, type EventDraft, newEventId, nextSessionStatus, projectEvents, SessionStatus } from "@cowork/domain"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { DELIVERIES_CHANNEL, EVENTS_CHANNEL } from "./Channels.ts"
import { liveLease } from "./LeaseFence.ts"

/**
 * The session status rule (`nextSessionStatus`, domain) as SQL: a CASE listing every (current, proposed) pair the
 * rule changes, generated from the rule itself so the two can never disagree.
 */
export const nextSessionStatusSql = (current: string, proposed: string): string => {
  const changes = SessionStatus.literals.flatMap((from) =>
    SessionStatus.literals.flatMap((to) => {
      const next = nextSessionStatus(from, to)
      return next === from ? [] : [`WHEN ${current} = '${from}' AND ${proposed} = '${to}' THEN '${next}'`]
    })
  )
  return `CASE ${changes.join(" ")} ELSE ${current} END`
}

const STATUS_CASE = nextSessionStatusSql("p.status", "$3::text")

export interface AppendFence {
  readonly workerId: string
  readonly epoch: number
  /** With a completion: the command must still be `running` under this epoch. */
  readonly completion?: {
    readonly commandId: string
    readonly outcome: "acked" | "failed" | "cancelled"
    readonly error?: string | undefined
    /** Moves the lease row's `checkpoint_version` to this value in the same statement (the checkpoint ack). */
    readonly checkpointVersion?: number | undefined
  } | undefined
  /**
   * With a completion: release the lease in the same statement when no command of the session is left `pending`
   * (as `releaseIfIdle`); the result's `released` says whether it did.
   */
  readonly release?: boolean | undefined
}

/**
 * What a caller composing the append into a larger statement supplies, given the number of its first parameter
 * (the append's own come first; `$1` is the session id): CTEs placed before the append's own (ending with a comma),
 * the `fence` CTE's body (a one-column `session_id` row gates the append), extra output columns, and its parameters.
 */
export type AppendComposition = (firstParam: number) => {
  readonly prefix: string
  readonly fence: string
  readonly select?: string | undefined
  readonly params: ReadonlyArray<unknown>
}

/**
 * The outbox, only in a batch that has delivered events (final assistant messages, questions, permission requests:
 * `deliveryDrafts`, parameter `kinds`): one delivery per such event and route of the session to a binding that is not
 * disabled, inserted by the append statement itself — an event is never committed without its deliveries, nor a
 * delivery without its event. Each binding that got one is notified.
 */
const outboxSql = (kinds: string) => `,
    outbox AS (
      INSERT INTO cloud_channel_deliveries (id, org_id, channel_binding_id, route_id, external_thread_id, session_id,
        event_id, event_sequence, event_type, kind, payload, idempotency_key)
      SELECT 'dlv_' || md5(d.event_id || ' ' || r.id), seq.org_id, r.channel_binding_id, r.id, r.external_thread_id, $1,
        d.event_id, seq.last_sequence - $2 + d.idx + 1, d.type, o.kind, d.payload, 'ocd_' || d.event_id || '_' || r.id
      FROM seq
      JOIN jsonb_to_recordset(${kinds}::jsonb) AS o(idx int, kind text) ON true
      JOIN jsonb_to_recordset($4::jsonb) AS d(idx int, event_id text, type text, payload jsonb) ON d.idx = o.idx
      JOIN cloud_channel_routes r ON r.session_id = $1
      JOIN cloud_channel_bindings b ON b.id = r.channel_binding_id AND b.status <> 'disabled'
      RETURNING org_id, channel_binding_id
    ),
    outbox_notified AS (
      SELECT pg_notify('${DELIVERIES_CHANNEL}', x.org_id || ' ' || x.channel_binding_id)
      FROM (SELECT DISTINCT org_id, channel_binding_id FROM outbox) x
    )`

/**
 * The append as one statement. Only the parts a batch needs are in it — dropping an abandoned attempt's messages,
 * upserting message rows, completing a command, moving the lease row, pending asks, the outbox — so the usual
 * batches (a burst of deltas, a turn's close, a prompt) carry no statement parts that would do nothing: every part
 * costs executor set-up on each call (and again when a concurrent write makes Postgres recheck the row). Parameters
 * are numbered as the parts use them; `$1` session, `$2` batch size, `$3` proposed status, `$4` events are always there.
 */
export const appendEventsStatement = (
  sessionId: string,
  drafts: ReadonlyArray<EventDraft>,
  fence: AppendFence | undefined,
  compose?: AppendComposition
): { readonly sql: string; readonly params: ReadonlyArray<unknown> } => {
  const delta = projectEvents(drafts)
  const events = drafts.map((draft, idx) => ({
    idx,
    event_id: newEventId(),
    type: draft.type,
    payload: draft.payload,
    command_id: draft.commandId ?? null,
    attempt: draft.attempt ?? null
  }))
  const params: Array<unknown> = [sessionId, drafts.length, delta.status ?? null, JSON.stringify(events)]
  const param = (value: unknown): string => {
    params.push(value)
    return `$${params.length}`
  }
  const parts: Array<string> = []

  if (delta.dropAttempts.length > 0) {
    const dropped = param(JSON.stringify(delta.dropAttempts.map((d) => ({ command_id: d.commandId, attempt: d.attempt }))))
    parts.push(`dropped AS (
      DELETE FROM cloud_session_projection_messages m
      USING seq, jsonb_to_recordset(${dropped}::jsonb) AS x(command_id text, attempt int)
      WHERE m.session_id = $1 AND m.command_id = x.command_id AND m.attempt = x.attempt
    )`)
  }
  if (delta.messages.length > 0) {
    const messages = param(JSON.stringify(delta.messages.map((m) => ({
      message_id: m.messageId,
      role: m.role,
      text: m.text,
      command_id: m.commandId,
      attempt: m.attempt,
      idx: m.draftIndex
    }))))
    parts.push(`msgs AS (
      INSERT INTO cloud_session_projection_messages (session_id, message_id, role, text, command_id, attempt, sequence)
      SELECT $1, x.message_id, x.role, x.text, x.command_id, x.attempt, seq.last_sequence - $2 + x.idx + 1
      FROM seq, jsonb_to_recordset(${messages}::jsonb) AS x(message_id text, role text, text text, command_id text, attempt int, idx int)
      ON CONFLICT (session_id, message_id) DO UPDATE
        SET text = EXCLUDED.text, sequence = EXCLUDED.sequence, attempt = EXCLUDED.attempt, command_id = EXCLUDED.command_id
    )`)
  }

  const completion = fence?.completion
  if (completion !== undefined) {
    parts.push(`done AS (
      UPDATE cloud_session_commands c SET status = ${param(completion.outcome)}, completed_at = now(), last_error = ${param(completion.error ?? null)}::text
      FROM seq WHERE c.id = ${param(completion.commandId)}
    )`)
  }
  const checkpointVersion = completion?.checkpointVersion ?? null
  // Advancing the checkpoint updates the lease row itself, so the fence takes the update lock up front instead of
  // upgrading a share lock (which could deadlock against a concurrent renewal).
  const release = fence?.release === true && completion !== undefined
  const fenceLock = checkpointVersion === null && !release ? "FOR SHARE OF l" : "FOR NO KEY UPDATE OF l"
  // The lease row moves once per statement: the checkpoint ack and, when releasing, the release, in one update.
  if (release) {
    const version = param(checkpointVersion)
    parts.push(`idle AS (
      SELECT NOT EXISTS (SELECT 1 FROM cloud_session_commands c WHERE c.session_id = $1 AND c.status = 'pending') AS idle
    ),
    checkpointed AS (
      UPDATE cloud_worker_leases l SET
        checkpoint_version = coalesce(${version}::bigint, l.checkpoint_version),
        worker_id = CASE WHEN idle.idle THEN NULL ELSE l.worker_id END,
        expires_at = CASE WHEN idle.idle THEN '-infinity'::timestamptz ELSE l.expires_at END
      FROM seq, idle WHERE l.session_id = $1 AND (${version}::bigint IS NOT NULL OR idle.idle)
      RETURNING l.worker_id IS NULL AS released
    )`)
  } else if (checkpointVersion !== null) {
    parts.push(`checkpointed AS (
      UPDATE cloud_worker_leases l SET checkpoint_version = ${param(checkpointVersion)}
      FROM seq WHERE l.session_id = $1
    )`)
  }

  // The pending asks change only in batches that ask, answer, end a turn or abort; every other append (the stream of
  // deltas) leaves them as they were.
  if (delta.asksOpened.length > 0 || delta.asksClosed.length > 0 || delta.asksClosedForCommands.length > 0 || delta.asksClearedAll) {
    const opened = param(JSON.stringify(delta.asksOpened.map((a) => ({ kind: a.ask, ask_id: a.askId, command_id: a.commandId, payload: a.payload, idx: a.draftIndex }))))
    const closedAsks = delta.asksClosed.length === 0
      ? ""
      : `
          OR EXISTS (SELECT 1 FROM jsonb_to_recordset(${param(JSON.stringify(delta.asksClosed.map((a) => ({ kind: a.ask, ask_id: a.askId }))))}::jsonb) AS c(kind text, ask_id text) WHERE c.kind = a.kind AND c.ask_id = a.ask_id)`
    const closedCommands = delta.asksClosedForCommands.length === 0
      ? ""
      : `
          OR a.command_id IN (SELECT jsonb_array_elements_text(${param(JSON.stringify(delta.asksClosedForCommands))}::jsonb))`
    parts.push(`asks_gone AS (
      DELETE FROM cloud_session_pending_asks a USING seq
      WHERE a.session_id = $1
        AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(${opened}::jsonb) AS o(kind text, ask_id text) WHERE o.kind = a.kind AND o.ask_id = a.ask_id)
        AND (${delta.asksClearedAll ? "true" : "false"}${closedAsks}${closedCommands})
    )`)
    if (delta.asksOpened.length > 0) {
      parts.push(`asks_new AS (
      INSERT INTO cloud_session_pending_asks (session_id, kind, ask_id, command_id, payload, sequence)
      SELECT $1, o.kind, o.ask_id, o.command_id, o.payload, seq.last_sequence - $2 + o.idx + 1
      FROM seq, jsonb_to_recordset(${opened}::jsonb) AS o(kind text, ask_id text, command_id text, payload jsonb, idx int)
      ON CONFLICT (session_id, kind, ask_id) DO UPDATE
        SET command_id = EXCLUDED.command_id, payload = EXCLUDED.payload, sequence = EXCLUDED.sequence
    )`)
    }
  }
  const outbox = deliveryDrafts(drafts)
  const outboxPart = outbox.length === 0 ? "" : outboxSql(param(JSON.stringify(outbox.map((d) => ({ idx: d.draftIndex, kind: d.kind })))))

  let fenceSql: string
  if (fence === undefined) {
    fenceSql = `SELECT $1::text AS session_id`
  } else {
    const epoch = param(fence.epoch)
    const worker = param(fence.workerId)
    const running = completion === undefined
      ? ""
      : `
         AND EXISTS (
           SELECT 1 FROM cloud_session_commands c
           WHERE c.id = ${param(completion.commandId)} AND c.session_id = $1 AND c.status = 'running' AND c.claimed_epoch = ${epoch}::bigint)`
    fenceSql = `SELECT l.session_id FROM cloud_worker_leases l
       WHERE ${liveLease("$1", epoch, worker)}${running}
       ${fenceLock}`
  }
  const composition = compose?.(params.length + 1)
  if (composition !== undefined) {
    fenceSql = composition.fence
    params.push(...composition.params)
  }
  const sql = `WITH ${composition?.prefix ?? ""}
    fence AS (${fenceSql}),
    seq AS (
      UPDATE cloud_session_projections p SET
        last_sequence = p.last_sequence + $2,
        projected_sequence = p.last_sequence + $2,
        status = ${STATUS_CASE},
        updated_at = now()
      FROM fence WHERE p.session_id = fence.session_id
      RETURNING p.last_sequence, p.org_id
    ),
    ins AS (
      INSERT INTO cloud_session_events (session_id, sequence, event_id, type, payload, command_id, attempt)
      SELECT $1, seq.last_sequence - $2 + d.idx + 1, d.event_id, d.type, d.payload, d.command_id, d.attempt
      FROM seq, jsonb_to_recordset($4::jsonb) AS d(idx int, event_id text, type text, payload jsonb, command_id text, attempt int)
    )${parts.map((part) => `,\n    ${part}`).join("")}${outboxPart}
    SELECT seq.last_sequence::float8 AS last_sequence,
      pg_notify('${EVENTS_CHANNEL}', seq.org_id || ' ' || $1 || ' ' || seq.last_sequence::text) IS NULL AS notified${
    outbox.length === 0 ? "" : ", (SELECT count(*) FROM outbox_notified) AS outbox_notified"}${
    release ? ", coalesce((SELECT released FROM checkpointed), false) AS released" : ""}${composition?.select ?? ""}
    FROM seq`
  return { sql, params }
}

/**
 * Appends a batch of events to a session's log in ONE statement: allocates contiguous sequences on the
 * projection row, inserts the events, applies the projection delta (status, message rows, dropped attempts),
 * completes the command, and `NOTIFY`s web processes — all or nothing.
 *
 * With a `fence`, the statement first locks the lease row `FOR SHARE` and proceeds only if `(session, epoch,
 * worker)` is the live, unexpired lease (by the database clock); claimers and the reaper take that row `FOR
 * UPDATE`, so ownership cannot change between the check and the commit. Returns the new last sequence, or
 * `undefined` when the fence refused the write (nothing applied).
 *
 * Without a fence (web-side events such as `session.created`, `prompt.submitted`), the same sequence allocation
 * serializes it with the owner's writes.
 */
export const appendEvents = Effect.fnUntraced(function*(
  sessionId: string,
  drafts: ReadonlyArray<EventDraft>,
  fence: AppendFence | undefined
) {
  const sql = yield* SqlClient.SqlClient
  const statement = appendEventsStatement(sessionId, drafts, fence)
  const rows = yield* sql.unsafe<{ last_sequence: number }>(statement.sql, statement.params)
  const row = rows[0]
  return row === undefined ? undefined : Number(row.last_sequence)
})
