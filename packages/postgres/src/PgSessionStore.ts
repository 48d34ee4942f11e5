import {
  answerPayload,
  type AskAnswer,
  askOf,
  commandCancelledEvent,
  type CommandPayload,
  Conflict,
  decodeMessageCursor,
  DEFAULT_VIEW_MESSAGES,
  encodeMessageCursor,
  newCommandId,
  newSessionId,
  normalizeTags,
  NotFound,
  pendingAsksView,
  type ProjectedMessage,
  type PromptQuota,
  type QuotaName,
  type Session,
  type SessionStatus,
  type SessionView
} from "@cowork/domain"
import {
  answerKey,
  askNotPending,
  busyConflict,
  type CreateSessionInput,
  DEFAULT_PROFILE_NAME,
  DefaultProfileName,
  DEFAULT_SESSION_TITLE,
  type ExistingAnswer,
  HOUR_MS,
  type ListSessionsQuery,
  LOST_ANSWER_STATUSES,
  type PromptInput,
  promptQuotaWithOverrides,
  QUEUED_RETRY_AFTER_MS,
  quotaExceeded,
  replayAnswer,
  replayIdempotentPrompt,
  sessionAborted,
  SessionStore,
  type ViewPage
} from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { pruneQuotaWindows } from "./QuotaWindows.ts"
import { appendEvents, appendEventsStatement } from "./AppendEvents.ts"
import { COMMANDS_CHANNEL, formatCommandSignal } from "./Channels.ts"
import { SESSIONS_FROM, sessionsPage } from "./SessionsPage.ts"
import { sessionWriteTransaction } from "./SessionWriteTransaction.ts"


/**
 * The concurrent_sessions check's two reads, as CTEs `mine` and `active` (`session`, `org`, `limit`: SQL expressions).
 * `mine`: does the session itself have an open prompt (then this prompt adds no concurrency: one probe of the open
 * commands index by session)? `active`: only when it does not, the org's sessions with an open prompt, counted up to
 * `limit` and no further (a distinct scan of the org's open-prompts index that stops at the limit): flat in the org's
 * backlog, and skipped for a session that is already at work.
 */
const ACTIVE_SESSIONS_SQL = (session: string, org: string, limit: string) => `mine AS (
      SELECT EXISTS (
        SELECT 1 FROM cloud_session_commands
        WHERE session_id = ${session} AND kind = 'prompt' AND status IN ('pending', 'running')) AS yes
    ),
    active AS (
      SELECT count(*) AS n FROM (
        SELECT DISTINCT session_id FROM cloud_session_commands
        WHERE ${limit} IS NOT NULL AND NOT (SELECT yes FROM mine)
          AND org_id = ${org} AND kind = 'prompt' AND status IN ('pending', 'running')
        ORDER BY session_id LIMIT ${limit}) d
    )`

interface SessionRow {
  readonly id: string
  readonly org_id: string
  readonly title: string
  readonly profile_name: string
  readonly status: string
  readonly last_sequence: number | bigint
  readonly created_at: Date
  readonly updated_at: Date
}

const SESSION_COLUMNS = `s.id, s.org_id, s.title, s.profile_name, p.status, p.last_sequence, s.created_at, p.updated_at`

const toSession = (row: SessionRow): Session => ({
  id: row.id,
  orgId: row.org_id,
  title: row.title,
  profileName: row.profile_name,
  status: row.status as SessionStatus,
  lastSequence: Number(row.last_sequence),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})


export interface SessionStoreOptions {
  /** The profile of a session created without one (the composition root reads OPEN_COWORK_CLOUD_PROFILE_NAME). */
  readonly defaultProfileName: string
}

/** The tenant side of sessions over Postgres; every statement is scoped to the caller's org. */
export const make = (options: SessionStoreOptions) => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const defaultProfile = options.defaultProfileName

  const selectSession = (orgId: string, sessionId: string) =>
    sql.unsafe<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM ${SESSIONS_FROM}
       WHERE s.id = $1 AND s.org_id = $2`,
      [sessionId, orgId]
    ).pipe(Effect.orDie)

  const get = Effect.fnUntraced(function*(orgId: string, sessionId: string) {
    const rows = yield* selectSession(orgId, sessionId)
    if (rows[0] === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
    return toSession(rows[0])
  }, Effect.withSpan("SessionStore.get"))

  const create = Effect.fn("SessionStore.create")(function*(orgId: string, input: CreateSessionInput) {
    const sessionId = newSessionId()
    const title = input.title ?? DEFAULT_SESSION_TITLE
    const profileName = input.profileName ?? defaultProfile
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql.unsafe(
        `INSERT INTO cloud_sessions (id, org_id, title, profile_name, project_source, tags, created_by)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], $7)`,
        [
          sessionId,
          orgId,
          title,
          profileName,
          input.projectSource === undefined ? null : JSON.stringify(input.projectSource),
          [...normalizeTags(input.tags ?? [])],
          input.createdBy ?? null
        ]
      )
      yield* sql.unsafe(`INSERT INTO cloud_session_projections (session_id, org_id) VALUES ($1, $2)`, [sessionId, orgId])
      yield* sql.unsafe(`INSERT INTO cloud_worker_leases (session_id) VALUES ($1)`, [sessionId])
      yield* appendEvents(sessionId, [{ type: "session.created", payload: { title, profileName } }], undefined).pipe(
        Effect.provideService(SqlClient.SqlClient, sql)
      )
    })).pipe(Effect.orDie)
    return yield* get(orgId, sessionId).pipe(Effect.orDie)
  })

  const list = Effect.fn("SessionStore.list")(function*(orgId: string, query: ListSessionsQuery) {
    const { rows, nextCursor, totalEstimate } = yield* sessionsPage<SessionRow>(sql, orgId, SESSION_COLUMNS, query, (param) => [
      ...(query.status === undefined ? [] : [`p.status = ${param(query.status)}`]),
      ...(query.profileName === undefined ? [] : [`s.profile_name = ${param(query.profileName)}`])
    ])
    return { sessions: rows.map(toSession), nextCursor, totalEstimate }
  }, Effect.orDie)

  const view = Effect.fn("SessionStore.view")(function*(orgId: string, sessionId: string, page?: ViewPage) {
    const session = yield* get(orgId, sessionId)
    const limit = page?.limit ?? DEFAULT_VIEW_MESSAGES
    const before = page?.cursor === undefined ? undefined : decodeMessageCursor(page.cursor)
    // One statement, one snapshot: the projected sequence and the messages it reflects. The newest `limit` (+1 to
    // know whether older ones exist) before the cursor, walked backwards on (session_id, sequence): a long session's
    // view reads a page, not its whole history. Ties on sequence by message id in byte order, as the memory layer.
    const rows = yield* sql.unsafe<{
      projected_sequence: number | bigint
      message_id: string | null
      role: "user" | "assistant" | null
      text: string | null
      command_id: string | null
      attempt: number | null
      sequence: number | bigint | null
    }>(
      `SELECT p.projected_sequence, m.message_id, m.role, m.text, m.command_id, m.attempt, m.sequence
       FROM cloud_session_projections p LEFT JOIN LATERAL (
         SELECT message_id, role, text, command_id, attempt, sequence FROM cloud_session_projection_messages
         WHERE session_id = $1 ${before === undefined ? "" : `AND (sequence < $3 OR (sequence = $3 AND message_id COLLATE "C" < $4))`}
         ORDER BY sequence DESC, message_id COLLATE "C" DESC LIMIT $2
       ) m ON true
       WHERE p.session_id = $1`,
      before === undefined ? [sessionId, limit + 1] : [sessionId, limit + 1, before[0], before[1]]
    ).pipe(Effect.orDie)
    const projectedSequence = Number(rows[0]?.projected_sequence ?? 0)
    const newestFirst: Array<ProjectedMessage> = rows.filter((r) => r.message_id !== null).map((r) => ({
      messageId: r.message_id!,
      role: r.role!,
      text: r.text!,
      commandId: r.command_id,
      attempt: r.attempt === null ? null : Number(r.attempt),
      sequence: Number(r.sequence)
    }))
    const messages = newestFirst.slice(0, limit).reverse()
    const oldest = messages[0]
    const nextCursor = newestFirst.length > limit && oldest !== undefined ? encodeMessageCursor(oldest.sequence, oldest.messageId) : null
    const asks = yield* sql.unsafe<{
      kind: "permission" | "question"
      ask_id: string
      command_id: string | null
      payload: Record<string, unknown>
      sequence: number | bigint
    }>(
      `SELECT kind, ask_id, command_id, payload, sequence FROM cloud_session_pending_asks WHERE session_id = $1 ORDER BY sequence`,
      [sessionId]
    ).pipe(Effect.orDie)
    const pending = pendingAsksView(asks.map((a) => ({
      ask: a.kind,
      askId: a.ask_id,
      commandId: a.command_id,
      payload: a.payload,
      sequence: Number(a.sequence)
    })))
    return { session, status: session.status, projectedSequence, messages, nextCursor, ...pending } satisfies SessionView
  })

  /**
   * Counts the prompt in the org's current clock-hour window, only while under the limit, and checks the org's pending
   * commands; inside the prompt's transaction, so a refusal rolls the count back and concurrent admissions of one org
   * serialize on the window row (other orgs never wait).
   */
  const admitPrompt = (orgId: string, sessionId: string, defaults: PromptQuota) =>
    Effect.gen(function*() {
      const overrides = yield* sql.unsafe<{ quota: QuotaName; value: string | number }>(
        `SELECT quota, value FROM cloud_org_quotas WHERE org_id = $1`,
        [orgId]
      )
      const quota = promptQuotaWithOverrides(defaults, Object.fromEntries(overrides.map((row) => [row.quota, Number(row.value)])))
      const counted = yield* sql.unsafe<{ used: number }>(
        `INSERT INTO cloud_quota_windows (org_id, quota, window_start, used)
         VALUES ($1, 'prompts_per_hour', date_trunc('hour', now()), 1)
         ON CONFLICT (org_id, quota, window_start) DO UPDATE SET used = cloud_quota_windows.used + 1
           WHERE cloud_quota_windows.used < $2
         RETURNING used`,
        [orgId, quota.promptsPerHour]
      )
      if (counted.length === 0) {
        const rows = yield* sql.unsafe<{ ms: number }>(
          `SELECT (extract(epoch FROM date_trunc('hour', now()) + interval '1 hour' - now()) * 1000)::float8 AS ms`
        )
        return yield* quotaExceeded("prompts_per_hour", quota.promptsPerHour, Number(rows[0]?.ms ?? HOUR_MS))
      }
      // The first admission of a window sweeps the org's windows that ended over a day ago: the table stays small.
      if (Number(counted[0]!.used) === 1) yield* pruneQuotaWindows(sql, orgId)
      const queued = yield* sql.unsafe<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT 1 FROM cloud_session_commands WHERE org_id = $1 AND status = 'pending' LIMIT $2) pending`,
        [orgId, quota.queuedCommands]
      )
      if (Number(queued[0]?.n ?? 0) >= quota.queuedCommands) {
        return yield* quotaExceeded("queued_commands", quota.queuedCommands, QUEUED_RETRY_AFTER_MS)
      }
      if (quota.concurrentSessions !== undefined) {
        // A prompt for a session already at work adds no concurrency; one that starts another is counted.
        const active = yield* sql.unsafe<{ n: number; mine: boolean }>(
          `WITH ${ACTIVE_SESSIONS_SQL("$2", "$1", "$3::bigint")} SELECT (SELECT n FROM active)::int AS n, (SELECT yes FROM mine) AS mine`,
          [orgId, sessionId, quota.concurrentSessions]
        )
        if (active[0]?.mine !== true && Number(active[0]?.n ?? 0) >= quota.concurrentSessions) {
          return yield* quotaExceeded("concurrent_sessions", quota.concurrentSessions, QUEUED_RETRY_AFTER_MS)
        }
      }
    })

  /**
   * The common prompt (no idempotency key, strategy `enqueue`) as ONE statement, one round trip: the session check (FOR
   * SHARE, as the transaction below), the quota admission, the command insert, `prompt.submitted` with its
   * projection, and both notifications. It writes only when it can decide alone: the session exists, is not aborted,
   * and — under a quota — the org's window row for this hour exists and both limits admit. The pending count is the
   * statement's snapshot, possibly older than the window row it bumps: every admission committed in between bumped
   * that row by one and queued at most one command, so `count + (used now - snapshot used)` bounds the real
   * queue (exact when nobody raced; when it refuses, the transaction recounts). Otherwise it returns no row and
   * writes nothing. The bump itself is `cloud_admit_prompt_window` (migration 11), a statement of its own: the org's
   * admissions queue on that row until each commits, and the recheck after such a wait (EvalPlanQual) then sets up
   * that one UPDATE instead of every part of this statement.
   */
  const promptStatement = (
    orgId: string,
    sessionId: string,
    commandId: string,
    input: { readonly text: string; readonly agent?: string | undefined; readonly traceParent?: string | undefined; readonly quota?: PromptQuota | undefined }
  ) =>
    appendEventsStatement(
      sessionId,
      [{ type: "prompt.submitted", payload: { commandId, text: input.text }, commandId }],
      undefined,
      {
        key: "prompt",
        // org, command id, payload, trace parent, prompts/hour (null: no quota), queued limit, commands channel,
        // signal, concurrent sessions (null: not checked).
        params: [
          orgId,
          commandId,
          JSON.stringify(input.agent === undefined ? { text: input.text } : { text: input.text, agent: input.agent }),
          input.traceParent ?? null,
          input.quota?.promptsPerHour ?? null,
          input.quota?.queuedCommands ?? null,
          COMMANDS_CHANNEL,
          formatCommandSignal({ kind: "prompt", sessionId }),
          input.quota?.concurrentSessions ?? null
        ],
        text: (first) => {
          const [org, command, payload, trace, perHour, queuedLimit, channel, signal, concurrent] = Array.from({ length: 9 }, (_, i) => `$${first + i}`)
          return {
            prefix: `
    ses AS (
      SELECT s.id FROM cloud_sessions s WHERE s.id = $1 AND s.org_id = ${org} AND s.aborted_at IS NULL FOR SHARE OF s
    ),
    lim AS (
      -- The org's overrides over the configured defaults (one row: an aggregate), read here instead of per request.
      SELECT coalesce(max(q.value) FILTER (WHERE q.quota = 'prompts_per_hour'), ${perHour}::bigint) AS per_hour,
        coalesce(max(q.value) FILTER (WHERE q.quota = 'queued_commands'), ${queuedLimit}::bigint) AS queued,
        CASE WHEN ${concurrent}::bigint IS NOT NULL
          THEN coalesce(max(q.value) FILTER (WHERE q.quota = 'concurrent_sessions'), ${concurrent}::bigint) END AS concurrent
      FROM cloud_org_quotas q WHERE ${perHour}::bigint IS NOT NULL AND q.org_id = ${org}
    ),
    win AS (
      SELECT w.used FROM cloud_quota_windows w
      WHERE ${perHour}::bigint IS NOT NULL AND w.org_id = ${org} AND w.quota = 'prompts_per_hour' AND w.window_start = date_trunc('hour', now())
    ),
    ${ACTIVE_SESSIONS_SQL("$1", org, "(SELECT concurrent FROM lim)")},
    queued AS (
      SELECT count(*) AS n FROM (
        SELECT 1 FROM cloud_session_commands
        WHERE ${perHour}::bigint IS NOT NULL AND org_id = ${org} AND status = 'pending' LIMIT (SELECT queued FROM lim)) q
    ),
    -- The window row is bumped by a statement of its own (migration 11): it waits for the org's admissions in flight
    -- and rechecks the row as last committed; the counts are this statement's snapshot, which may be older: every
    -- admission committed since bumped the row by one and queued at most one command and started at most one session,
    -- so count + (used now - used seen) bounds both (no window row: undecided, the transaction below).
    admitted AS (
      SELECT cloud_admit_prompt_window(${org}, (SELECT per_hour FROM lim), (SELECT queued FROM lim), (SELECT n FROM queued),
        coalesce((SELECT used FROM win), 0), (SELECT concurrent FROM lim),
        CASE WHEN (SELECT concurrent FROM lim) IS NOT NULL THEN (SELECT n FROM active) END,
        CASE WHEN (SELECT concurrent FROM lim) IS NOT NULL THEN (SELECT yes FROM mine) END) AS used
      FROM ses WHERE ${perHour}::bigint IS NOT NULL
    ),
    ok AS (
      SELECT ses.id FROM ses WHERE ${perHour}::bigint IS NULL OR (SELECT used FROM admitted) IS NOT NULL
    ),
    cmd AS (
      INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, trace_parent)
      SELECT ${command}, ok.id, ${org}, 'prompt', ${payload}::jsonb, ${trace} FROM ok
      RETURNING session_id
    ),`,
            fence: `SELECT cmd.session_id FROM cmd`,
            select: `, pg_notify(${channel}, ${signal}) IS NULL AS signalled`
          }
        }
      }
    )

  const prompt = Effect.fnUntraced(function*(orgId: string, sessionId: string, input: PromptInput) {
    // `reject` and `interrupt` look at the running turn, and a key may replay: those take the transaction.
    if (input.idempotencyKey === undefined && (input.multitaskStrategy ?? "enqueue") === "enqueue") {
      const commandId = newCommandId()
      const fast = promptStatement(orgId, sessionId, commandId, input)
      const rows = yield* sql.unsafe<{ last_sequence: number }>(fast.sql, fast.params).pipe(Effect.orDie)
      if (rows.length > 0) return { commandId, created: true }
      // Refused or undecided (session missing or aborted, a quota at its limit or raced, the hour's first prompt):
      // nothing was written; the transaction below decides, and answers as it always did.
    }
    return yield* sessionWriteTransaction(sql, orgId, sessionId, (session) => Effect.gen(function*() {
      const key = input.idempotencyKey ?? null
      const findExisting = sql.unsafe<{ id: string; text: string | null }>(
        `SELECT id, payload->>'text' AS text FROM cloud_session_commands WHERE session_id = $1 AND idempotency_key = $2`,
        [sessionId, key]
      )
      const replay = (existing: { readonly id: string; readonly text: string | null }) =>
        replayIdempotentPrompt({ commandId: existing.id, text: existing.text }, key!, input.text)
      if (key !== null) {
        const existing = yield* findExisting
        if (existing[0] !== undefined) return yield* replay(existing[0])
      }
      if (session.aborted) return yield* new Conflict({ message: `session ${sessionId} is aborted` })
      if (input.multitaskStrategy === "reject") {
        const busy = yield* sql.unsafe<{ id: string }>(
          `SELECT id FROM cloud_session_commands WHERE session_id = $1 AND kind = 'prompt' AND status IN ('pending', 'running') LIMIT 1`,
          [sessionId]
        )
        if (busy.length > 0) return yield* busyConflict(sessionId)
      }
      if (input.quota !== undefined) yield* admitPrompt(orgId, sessionId, input.quota)
      const commandId = newCommandId()
      const inserted = yield* sql.unsafe<{ id: string }>(
        `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, idempotency_key, trace_parent)
         VALUES ($1, $2, $3, 'prompt', $4::jsonb, $5, $6)
         ON CONFLICT (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id`,
        [
          commandId,
          sessionId,
          orgId,
          JSON.stringify(input.agent === undefined ? { text: input.text } : { text: input.text, agent: input.agent }),
          key,
          input.traceParent ?? null
        ]
      )
      if (inserted[0] === undefined) {
        // A concurrent request with the same key committed first.
        return yield* replay((yield* findExisting)[0]!)
      }
      yield* appendEvents(sessionId, [{ type: "prompt.submitted", payload: { commandId, text: input.text }, commandId }], undefined).pipe(
        Effect.provideService(SqlClient.SqlClient, sql)
      )
      yield* sql.unsafe(`SELECT pg_notify($1, $2)`, [COMMANDS_CHANNEL, formatCommandSignal({ kind: "prompt", sessionId })])
      if (input.multitaskStrategy === "interrupt") {
        const running = yield* sql.unsafe<{ id: string }>(
          `SELECT id FROM cloud_session_commands WHERE session_id = $1 AND kind = 'prompt' AND status = 'running' LIMIT 1`,
          [sessionId]
        )
        if (running[0] !== undefined) {
          yield* sql.unsafe(`SELECT pg_notify($1, $2)`, [
            COMMANDS_CHANNEL,
            formatCommandSignal({ kind: "interrupt", sessionId, commandId: running[0].id, by: commandId })
          ])
        }
      }
      return { commandId, created: true }
    }))
  }, Effect.withSpan("SessionStore.prompt"))

  const answer = Effect.fn("SessionStore.answer")(function*(orgId: string, sessionId: string, input: AskAnswer) {
    return yield* sessionWriteTransaction(sql, orgId, sessionId, (session) => Effect.gen(function*() {
      const key = answerKey(input)
      const findExisting = sql.unsafe<{ id: string; kind: string; payload: CommandPayload; created_ms: string; status: string }>(
        `SELECT id, kind, payload, (extract(epoch FROM created_at) * 1000)::bigint AS created_ms, status
         FROM cloud_session_commands WHERE session_id = $1 AND idempotency_key = $2`,
        [sessionId, key]
      )
      const replay = (existing: { readonly id: string; readonly kind: string; readonly payload: CommandPayload; readonly created_ms: string }) =>
        replayAnswer({ commandId: existing.id, kind: existing.kind, payload: existing.payload, createdAt: Number(existing.created_ms) }, input)
      const existing = (yield* findExisting)[0]
      const lost = existing !== undefined && LOST_ANSWER_STATUSES.includes(existing.status)
      if (existing !== undefined && !lost) return yield* replay(existing)
      if (session.aborted) return yield* sessionAborted(sessionId, input)
      const { ask, askId } = askOf(input)
      const pending = yield* sql.unsafe<{ one: number }>(
        `SELECT 1 AS one FROM cloud_session_pending_asks WHERE session_id = $1 AND kind = $2 AND ask_id = $3`,
        [sessionId, ask, askId]
      )
      if (pending.length === 0) return yield* askNotPending(input)
      // A lost answer (dead-lettered or cancelled) gives its key up to this one; a concurrent answer that freed it
      // first leaves nothing to update here, and its insert wins the conflict below.
      if (lost) {
        yield* sql.unsafe(
          `UPDATE cloud_session_commands SET idempotency_key = NULL WHERE id = $1 AND idempotency_key = $2 AND status = ANY($3::text[])`,
          [existing.id, key, LOST_ANSWER_STATUSES]
        )
      }
      const commandId = newCommandId()
      const inserted = yield* sql.unsafe<{ id: string }>(
        `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, idempotency_key)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6)
         ON CONFLICT (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id`,
        [commandId, sessionId, orgId, input.kind, JSON.stringify(answerPayload(input)), key]
      )
      // A concurrent answer to the same ask committed first.
      if (inserted[0] === undefined) return yield* replay((yield* findExisting)[0]!)
      yield* sql.unsafe(`SELECT pg_notify($1, $2)`, [COMMANDS_CHANNEL, formatCommandSignal({ kind: "answer", sessionId })])
      return { commandId, created: true }
    }))
  })

  const existingAnswer = Effect.fn("SessionStore.existingAnswer")(function*(orgId: string, sessionId: string, input: AskAnswer) {
    const rows = yield* sql.unsafe<{ id: string; kind: string; payload: CommandPayload; created_ms: string }>(
      `SELECT c.id, c.kind, c.payload, (extract(epoch FROM c.created_at) * 1000)::bigint AS created_ms
       FROM cloud_sessions s LEFT JOIN cloud_session_commands c ON c.session_id = s.id AND c.idempotency_key = $3
         AND c.status <> ALL($4::text[])
       WHERE s.id = $1 AND s.org_id = $2`,
      [sessionId, orgId, answerKey(input), LOST_ANSWER_STATUSES]
    ).pipe(Effect.catchTag("SqlError", Effect.die))
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
    return row.id === null
      ? undefined
      : { commandId: row.id, kind: row.kind, payload: row.payload, createdAt: Number(row.created_ms) } satisfies ExistingAnswer
  })

  const abort = Effect.fn("SessionStore.abort")(function*(orgId: string, sessionId: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const locked = yield* sql.unsafe<{ aborted: boolean }>(
        `SELECT aborted_at IS NOT NULL AS aborted FROM cloud_sessions WHERE id = $1 AND org_id = $2 FOR UPDATE`,
        [sessionId, orgId]
      )
      if (locked[0] === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
      if (locked[0].aborted) {
        const existing = yield* sql.unsafe<{ id: string }>(
          `SELECT id FROM cloud_session_commands WHERE session_id = $1 AND kind = 'abort' ORDER BY position DESC LIMIT 1`,
          [sessionId]
        )
        if (existing[0] !== undefined) return { commandId: existing[0].id, created: false }
      }
      yield* sql.unsafe(`UPDATE cloud_sessions SET aborted_at = coalesce(aborted_at, now()) WHERE id = $1`, [sessionId])
      const cancelled = yield* sql.unsafe<{ id: string; kind: string; position: string }>(
        `UPDATE cloud_session_commands SET status = 'cancelled', completed_at = now()
         WHERE session_id = $1 AND status = 'pending' AND kind <> 'abort'
         RETURNING id, kind, position`,
        [sessionId]
      )
      const commandId = newCommandId()
      yield* sql.unsafe(
        `INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload) VALUES ($1, $2, $3, 'abort', '{}'::jsonb)`,
        [commandId, sessionId, orgId]
      )
      if (cancelled.length > 0) {
        const inMailboxOrder = [...cancelled].sort((a, b) => Number(a.position) - Number(b.position))
        yield* appendEvents(sessionId, inMailboxOrder.map((row) => commandCancelledEvent({ commandId: row.id, kind: row.kind }, { abortCommandId: commandId })), undefined)
          .pipe(Effect.provideService(SqlClient.SqlClient, sql))
      }
      yield* sql.unsafe(`SELECT pg_notify($1, $2)`, [COMMANDS_CHANNEL, formatCommandSignal({ kind: "abort", sessionId })])
      return { commandId, created: true }
    })).pipe(Effect.catchTag("SqlError", Effect.die))
  })

  return SessionStore.of({ create, list, get, view, prompt, answer, existingAnswer, abort })
})

export const layerWith = (options: SessionStoreOptions) => Layer.effect(SessionStore, make(options))

/** Sessions created without a profile get `default`. */
export const layer = layerWith({ defaultProfileName: DEFAULT_PROFILE_NAME })

/** Sessions created without a profile get OPEN_COWORK_CLOUD_PROFILE_NAME (composition roots). */
export const layerConfig = Layer.unwrap(Effect.map(DefaultProfileName, (defaultProfileName) => layerWith({ defaultProfileName })))
