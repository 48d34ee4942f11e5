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
 * What a caller composing the append into a larger statement supplies: its parameters (after the append's own; `$1`
 * is the session id), and its text given the number of its first parameter — CTEs placed before the append's own
 * (ending with a comma), the `fence` CTE's body (a one-column `session_id` row gates the append), extra output
 * columns. The text is cached per statement shape under `key`: the same key must always build the same text for the
 * same first parameter, whatever the parameters' values.
 */
export interface AppendComposition {
  readonly key: string
  readonly params: ReadonlyArray<unknown>
  readonly text: (firstParam: number) => {
    readonly prefix: string
    readonly fence: string
    readonly select?: string | undefined
  }
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
 * Which parts a batch's statement has and the placeholders (`$n`) of their parameters, or "" for a part it lacks:
 * everything the statement's text depends on (with the composition's key), nothing else — the text is built once
 * per shape (`appendSql`) and cached; the values go in the parameters.
 */
interface AppendShape {
  readonly dropped: string
  readonly messages: string
  readonly completion: { readonly status: string; readonly error: string; readonly commandId: string } | undefined
  readonly release: boolean
  /** The checkpoint version's placeholder, or "" when the batch does not move it. */
  readonly version: string
  readonly asks: {
    readonly opened: string
    readonly insertOpened: boolean
    readonly closed: string
    readonly closedCommands: string
    readonly clearedAll: boolean
  } | undefined
  readonly outbox: string
  readonly fence: { readonly epoch: string; readonly worker: string; readonly runningCommand: string } | undefined
  readonly composition: { readonly key: string; readonly text: AppendComposition["text"]; readonly first: number } | undefined
}

const shapeKey = (shape: AppendShape): string =>
  `${shape.dropped}|${shape.messages}|${shape.completion === undefined ? "" : `${shape.completion.status},${shape.completion.error},${shape.completion.commandId}`}|${shape.release}|${shape.version}|${
    shape.asks === undefined
      ? ""
      : `${shape.asks.opened},${shape.asks.insertOpened},${shape.asks.closed},${shape.asks.closedCommands},${shape.asks.clearedAll}`
  }|${shape.outbox}|${shape.fence === undefined ? "" : `${shape.fence.epoch},${shape.fence.worker},${shape.fence.runningCommand}`}|${
    shape.composition === undefined ? "" : `${shape.composition.key}@${shape.composition.first}`
  }`

/** The statement's text for a shape. */
const appendSql = (shape: AppendShape): string => {
  const parts: Array<string> = []
  if (shape.dropped !== "") {
    parts.push(`dropped AS (
      DELETE FROM cloud_session_projection_messages m
      USING seq, jsonb_to_recordset(${shape.dropped}::jsonb) AS x(command_id text, attempt int)
      WHERE m.session_id = $1 AND m.command_id = x.command_id AND m.attempt = x.attempt
    )`)
  }
  if (shape.messages !== "") {
    parts.push(`msgs AS (
      INSERT INTO cloud_session_projection_messages (session_id, message_id, role, text, command_id, attempt, sequence)
      SELECT $1, x.message_id, x.role, x.text, x.command_id, x.attempt, seq.last_sequence - $2 + x.idx + 1
      FROM seq, jsonb_to_recordset(${shape.messages}::jsonb) AS x(message_id text, role text, text text, command_id text, attempt int, idx int)
      ON CONFLICT (session_id, message_id) DO UPDATE
        SET text = EXCLUDED.text, sequence = EXCLUDED.sequence, attempt = EXCLUDED.attempt, command_id = EXCLUDED.command_id
    )`)
  }
  const completion = shape.completion
  if (completion !== undefined) {
    parts.push(`done AS (
      UPDATE cloud_session_commands c SET status = ${completion.status}, completed_at = now(), last_error = ${completion.error}::text
      FROM seq WHERE c.id = ${completion.commandId}
    )`)
  }
  // Advancing the checkpoint updates the lease row itself, so the fence takes the update lock up front instead of
  // upgrading a share lock (which could deadlock against a concurrent renewal).
  const fenceLock = shape.version === "" && !shape.release ? "FOR SHARE OF l" : "FOR NO KEY UPDATE OF l"
  // The lease row moves once per statement: the checkpoint ack and, when releasing, the release, in one update.
  if (shape.release) {
    const version = shape.version
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
  } else if (shape.version !== "") {
    parts.push(`checkpointed AS (
      UPDATE cloud_worker_leases l SET checkpoint_version = ${shape.version}
      FROM seq WHERE l.session_id = $1
    )`)
  }
  const asks = shape.asks
  if (asks !== undefined) {
    const closedAsks = asks.closed === ""
      ? ""
      : `
          OR EXISTS (SELECT 1 FROM jsonb_to_recordset(${asks.closed}::jsonb) AS c(kind text, ask_id text) WHERE c.kind = a.kind AND c.ask_id = a.ask_id)`
    const closedCommands = asks.closedCommands === ""
      ? ""
      : `
          OR a.command_id IN (SELECT jsonb_array_elements_text(${asks.closedCommands}::jsonb))`
    parts.push(`asks_gone AS (
      DELETE FROM cloud_session_pending_asks a USING seq
      WHERE a.session_id = $1
        AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(${asks.opened}::jsonb) AS o(kind text, ask_id text) WHERE o.kind = a.kind AND o.ask_id = a.ask_id)
        AND (${asks.clearedAll ? "true" : "false"}${closedAsks}${closedCommands})
    )`)
    if (asks.insertOpened) {
      parts.push(`asks_new AS (
      INSERT INTO cloud_session_pending_asks (session_id, kind, ask_id, command_id, payload, sequence)
      SELECT $1, o.kind, o.ask_id, o.command_id, o.payload, seq.last_sequence - $2 + o.idx + 1
      FROM seq, jsonb_to_recordset(${asks.opened}::jsonb) AS o(kind text, ask_id text, command_id text, payload jsonb, idx int)
      ON CONFLICT (session_id, kind, ask_id) DO UPDATE
        SET command_id = EXCLUDED.command_id, payload = EXCLUDED.payload, sequence = EXCLUDED.sequence
    )`)
    }
  }
  const outboxPart = shape.outbox === "" ? "" : outboxSql(shape.outbox)

  let fenceSql: string
  const fence = shape.fence
  if (fence === undefined) {
    fenceSql = `SELECT $1::text AS session_id`
  } else {
    const running = fence.runningCommand === ""
      ? ""
      : `
         AND EXISTS (
           SELECT 1 FROM cloud_session_commands c
           WHERE c.id = ${fence.runningCommand} AND c.session_id = $1 AND c.status = 'running' AND c.claimed_epoch = ${fence.epoch}::bigint)`
    fenceSql = `SELECT l.session_id FROM cloud_worker_leases l
       WHERE ${liveLease("$1", fence.epoch, fence.worker)}${running}
       ${fenceLock}`
  }
  const composition = shape.composition === undefined ? undefined : shape.composition.text(shape.composition.first)
  if (composition !== undefined) fenceSql = composition.fence
  return `WITH ${composition?.prefix ?? ""}
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
    shape.outbox === "" ? "" : ", (SELECT count(*) FROM outbox_notified) AS outbox_notified"}${
    shape.release ? ", coalesce((SELECT released FROM checkpointed), false) AS released" : ""}${composition?.select ?? ""}
    FROM seq`
}

/**
 * Statement texts by shape: a few dozen shapes occur (deltas, a turn's close, a prompt, asks, checkpoints), each
 * built once — not rebuilt (several KiB of string) on every append. Bounded; refilled if ever exceeded.
 */
const statementTexts = new Map<string, string>()
const MAX_CACHED_SHAPES = 1024

const cachedAppendSql = (shape: AppendShape): string => {
  const key = shapeKey(shape)
  let text = statementTexts.get(key)
  if (text === undefined) {
    if (statementTexts.size >= MAX_CACHED_SHAPES) statementTexts.clear()
    text = appendSql(shape)
    statementTexts.set(key, text)
  }
  return text
}

/**
 * The append as one statement. Only the parts a batch needs are in it — dropping an abandoned attempt's messages,
 * upserting message rows, completing a command, moving the lease row, pending asks, the outbox — so the usual
 * batches (a burst of deltas, a turn's close, a prompt) carry no statement parts that would do nothing: every part
 * costs executor set-up on each call (and again when a concurrent write makes Postgres recheck the row). Parameters
 * are numbered as the parts use them; `$1` session, `$2` batch size, `$3` proposed status, `$4` events are always
 * there. The text is built once per shape (which parts, their placeholders, the composition) and reused.
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

  const dropped = delta.dropAttempts.length === 0
    ? ""
    : param(JSON.stringify(delta.dropAttempts.map((d) => ({ command_id: d.commandId, attempt: d.attempt }))))
  const messages = delta.messages.length === 0 ? "" : param(JSON.stringify(delta.messages.map((m) => ({
    message_id: m.messageId,
    role: m.role,
    text: m.text,
    command_id: m.commandId,
    attempt: m.attempt,
    idx: m.draftIndex
  }))))
  const done = fence?.completion
  const completion = done === undefined
    ? undefined
    : { status: param(done.outcome), error: param(done.error ?? null), commandId: param(done.commandId) }
  const checkpointVersion = done?.checkpointVersion ?? null
  const release = fence?.release === true && done !== undefined
  const version = release || checkpointVersion !== null ? param(checkpointVersion) : ""

  // The pending asks change only in batches that ask, answer, end a turn or abort; every other append (the stream of
  // deltas) leaves them as they were.
  let asks: AppendShape["asks"]
  if (delta.asksOpened.length > 0 || delta.asksClosed.length > 0 || delta.asksClosedForCommands.length > 0 || delta.asksClearedAll) {
    const opened = param(JSON.stringify(delta.asksOpened.map((a) => ({ kind: a.ask, ask_id: a.askId, command_id: a.commandId, payload: a.payload, idx: a.draftIndex }))))
    const closed = delta.asksClosed.length === 0
      ? ""
      : param(JSON.stringify(delta.asksClosed.map((a) => ({ kind: a.ask, ask_id: a.askId }))))
    const closedCommands = delta.asksClosedForCommands.length === 0 ? "" : param(JSON.stringify(delta.asksClosedForCommands))
    asks = { opened, insertOpened: delta.asksOpened.length > 0, closed, closedCommands, clearedAll: delta.asksClearedAll }
  }
  const deliveries = deliveryDrafts(drafts)
  const outbox = deliveries.length === 0 ? "" : param(JSON.stringify(deliveries.map((d) => ({ idx: d.draftIndex, kind: d.kind }))))

  let fenceShape: AppendShape["fence"]
  if (fence !== undefined) {
    const epoch = param(fence.epoch)
    const worker = param(fence.workerId)
    fenceShape = { epoch, worker, runningCommand: done === undefined ? "" : param(done.commandId) }
  }
  let composition: AppendShape["composition"]
  if (compose !== undefined) {
    composition = { key: compose.key, text: compose.text, first: params.length + 1 }
    params.push(...compose.params)
  }
  const sql = cachedAppendSql({ dropped, messages, completion, release, version, asks, outbox, fence: fenceShape, composition })
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
