import {
  answerPayload,
  askKey,
  askOf,
  commandCancelledEvent,
  Conflict,
  decodeMessageCursor,
  decodeSessionCursor,
  DEFAULT_VIEW_MESSAGES,
  encodeMessageCursor,
  encodeSessionCursor,
  newCommandId,
  newSessionId,
  normalizeTags,
  NotFound,
  pendingAsksView,
  type PromptQuota,
  type Session,
  type SessionView
} from "@cowork/domain"
import { Clock, Effect, PubSub } from "effect"
import { HOUR_MS, QUEUED_RETRY_AFTER_MS, quotaExceeded } from "./QuotaRules.ts"
import type { CommandSignal } from "./ChangeFeed.ts"
import type { MemoryCommand, MemoryTables } from "./MemoryDatabase.ts"
import { appendToLog } from "./MemoryLog.ts"
import {
  answerKey,
  askNotPending,
  busyConflict,
  DEFAULT_SESSION_TITLE,
  LOST_ANSWER_STATUSES,
  replayAnswer,
  replayIdempotentPrompt,
  sessionAborted
} from "./SessionRules.ts"
import type { SessionStore } from "./SessionStore.ts"
import { promptQuotaWithOverrides } from "./Quotas.ts"

/** The memory twin of `PgSessionStore`, org-scoped the same way (another org's session is `NotFound`). */
export const makeSessionStoreMemory = (db: MemoryTables, defaultProfileName: string): SessionStore["Service"] => {
  /** Queues a new pending command, as the Pg layer's insert does; returns its id. */
  const enqueue = (
    command: Pick<MemoryCommand, "sessionId" | "orgId" | "kind" | "payload" | "idempotencyKey" | "traceParent" | "createdAt">
  ): string => {
    const id = newCommandId()
    db.commands.push({ id, ...command, status: "pending", attemptCount: 0, claimedEpoch: null, claimedBy: null, lastError: null })
    return id
  }
  // Prompts per org per clock hour (the Pg layer keeps the same fixed windows in cloud_quota_windows).
  const promptWindows = new Map<string, number>()
  const admitPrompt = (orgId: string, sessionId: string, defaults: PromptQuota, now: number) =>
    Effect.gen(function*() {
      const quota = promptQuotaWithOverrides(defaults, db.orgQuotas.get(orgId) ?? {})
      const windowStart = Math.floor(now / HOUR_MS) * HOUR_MS
      const key = `${orgId}\u0000${windowStart}`
      const used = promptWindows.get(key) ?? 0
      if (used >= quota.promptsPerHour) {
        return yield* quotaExceeded("prompts_per_hour", quota.promptsPerHour, windowStart + HOUR_MS - now)
      }
      const queued = db.commands.filter((command) => command.orgId === orgId && command.status === "pending").length
      if (queued >= quota.queuedCommands) {
        return yield* quotaExceeded("queued_commands", quota.queuedCommands, QUEUED_RETRY_AFTER_MS)
      }
      if (quota.concurrentSessions !== undefined) {
        const active = new Set(db.commands
          .filter((command) =>
            command.orgId === orgId && command.kind === "prompt" && (command.status === "pending" || command.status === "running"))
          .map((command) => command.sessionId))
        if (!active.has(sessionId) && active.size >= quota.concurrentSessions) {
          return yield* quotaExceeded("concurrent_sessions", quota.concurrentSessions, QUEUED_RETRY_AFTER_MS)
        }
      }
      if (used === 0) {
        // A new window: the org's windows that ended over a day ago go.
        for (const [other] of promptWindows) {
          const [otherOrg, start] = other.split("\u0000")
          if (otherOrg === orgId && Number(start) < now - 2 * 24 * HOUR_MS) promptWindows.delete(other)
        }
      }
      promptWindows.set(key, used + 1)
    })
  const notFound = (sessionId: string) => new NotFound({ message: `session ${sessionId} not found` })

  const sessionOf = (orgId: string, sessionId: string): Session | undefined => {
    const session = db.sessions.get(sessionId)
    const projection = db.projections.get(sessionId)
    if (session === undefined || projection === undefined || session.orgId !== orgId) return undefined
    return {
      id: session.id,
      orgId: session.orgId,
      title: session.title,
      profileName: session.profileName,
      status: projection.status,
      lastSequence: projection.lastSequence,
      createdAt: new Date(session.createdAt).toISOString(),
      updatedAt: new Date(projection.updatedAt).toISOString()
    }
  }

  const get = (orgId: string, sessionId: string) =>
    Effect.suspend(() => {
      const session = sessionOf(orgId, sessionId)
      return session === undefined ? Effect.fail(notFound(sessionId)) : Effect.succeed(session)
    })

  const newest = (a: Session, b: Session) =>
    a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0

  return {
    create: (orgId, input) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const id = newSessionId()
        const title = input.title ?? DEFAULT_SESSION_TITLE
        const profileName = input.profileName ?? defaultProfileName
        db.sessions.set(id, {
          id,
          orgId,
          title,
          profileName,
          createdAt: now,
          abortedAt: null,
          tags: normalizeTags(input.tags ?? []),
          createdBy: input.createdBy ?? null
        })
        db.projections.set(id, {
          orgId,
          status: "idle",
          lastSequence: 0,
          projectedSequence: 0,
          earliestSequence: 1,
          updatedAt: now,
          messages: new Map(),
          asks: new Map()
        })
        db.leases.set(id, { workerId: null, epoch: 0, expiresAt: -Infinity, checkpointVersion: 0 })
        appendToLog(db, id, [{ type: "session.created", payload: { title, profileName } }], now)
        return sessionOf(orgId, id)!
      }),
    list: (orgId, query) =>
      Effect.sync(() => {
        const q = query.q === undefined || query.q === "" ? undefined : query.q.toLowerCase()
        const matching = [...db.sessions.keys()]
          .map((id) => sessionOf(orgId, id))
          .filter((s): s is Session =>
            s !== undefined && (query.status === undefined || s.status === query.status) &&
            (query.profileName === undefined || s.profileName === query.profileName) &&
            (q === undefined || s.title.toLowerCase().includes(q))
          )
          .sort(newest)
        const cursorId = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor)
        const after = cursorId === undefined ? undefined : sessionOf(orgId, cursorId)
        const rest = cursorId === undefined
          ? matching
          : after === undefined
          ? []
          : matching.filter((s) => newest(after, s) < 0)
        const page = rest.slice(0, query.limit)
        const last = page.at(-1)
        return {
          sessions: page,
          nextCursor: rest.length > query.limit && last !== undefined ? encodeSessionCursor(last.id) : null,
          totalEstimate: matching.length
        }
      }),
    get,
    view: (orgId, sessionId, page) =>
      Effect.map(get(orgId, sessionId), (session): SessionView => {
        const projection = db.projections.get(sessionId)!
        const limit = page?.limit ?? DEFAULT_VIEW_MESSAGES
        const before = page?.cursor === undefined ? undefined : decodeMessageCursor(page.cursor)
        // Newest first on (sequence, messageId), as the Pg layer's keyset reads them.
        const older = [...projection.messages.values()]
          .sort((a, b) => b.sequence - a.sequence || (a.messageId < b.messageId ? 1 : a.messageId > b.messageId ? -1 : 0))
          .filter((m) => before === undefined || m.sequence < before[0] || (m.sequence === before[0] && m.messageId < before[1]))
        const messages = older.slice(0, limit).reverse()
        const oldest = messages[0]
        return {
          session,
          status: session.status,
          projectedSequence: projection.projectedSequence,
          messages,
          nextCursor: older.length > limit && oldest !== undefined ? encodeMessageCursor(oldest.sequence, oldest.messageId) : null,
          ...pendingAsksView([...projection.asks.values()])
        }
      }),
    prompt: (orgId, sessionId, input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const session = db.sessions.get(sessionId)
        if (session === undefined || session.orgId !== orgId) return yield* notFound(sessionId)
        const key = input.idempotencyKey ?? null
        const existing = key === null
          ? undefined
          : db.commands.find((c) => c.sessionId === sessionId && c.idempotencyKey === key)
        if (existing !== undefined) return yield* replayIdempotentPrompt({ commandId: existing.id, text: existing.payload.text }, key!, input.text)
        if (session.abortedAt !== null) return yield* new Conflict({ message: `session ${sessionId} is aborted` })
        if (
          input.multitaskStrategy === "reject" &&
          db.commands.some((c) => c.sessionId === sessionId && c.kind === "prompt" && (c.status === "pending" || c.status === "running"))
        ) {
          return yield* busyConflict(sessionId)
        }
        if (input.quota !== undefined) yield* admitPrompt(orgId, sessionId, input.quota, now)
        const commandId = enqueue({
          sessionId,
          orgId,
          kind: "prompt",
          payload: input.agent === undefined ? { text: input.text } : { text: input.text, agent: input.agent },
          idempotencyKey: key,
          traceParent: input.traceParent ?? null,
          createdAt: now
        })
        appendToLog(db, sessionId, [{ type: "prompt.submitted", payload: { commandId, text: input.text }, commandId }], now)
        PubSub.publishUnsafe<CommandSignal>(db.commandSignals, { kind: "prompt", sessionId })
        if (input.multitaskStrategy === "interrupt") {
          const running = db.commands.find((c) => c.sessionId === sessionId && c.kind === "prompt" && c.status === "running")
          if (running !== undefined) {
            PubSub.publishUnsafe<CommandSignal>(db.commandSignals, { kind: "interrupt", sessionId, commandId: running.id, by: commandId })
          }
        }
        return { commandId, created: true }
      }),
    answer: (orgId, sessionId, answer) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const session = db.sessions.get(sessionId)
        if (session === undefined || session.orgId !== orgId) return yield* notFound(sessionId)
        const key = answerKey(answer)
        const existing = db.commands.find((c) => c.sessionId === sessionId && c.idempotencyKey === key && !LOST_ANSWER_STATUSES.includes(c.status))
        if (existing !== undefined) {
          return yield* replayAnswer({ commandId: existing.id, kind: existing.kind, payload: existing.payload, createdAt: existing.createdAt }, answer)
        }
        if (session.abortedAt !== null) return yield* sessionAborted(sessionId, answer)
        const { ask, askId } = askOf(answer)
        if (!db.projections.get(sessionId)!.asks.has(askKey(ask, askId))) return yield* askNotPending(answer)
        const commandId = enqueue({
          sessionId,
          orgId,
          kind: answer.kind,
          payload: answerPayload(answer),
          idempotencyKey: key,
          traceParent: null,
          createdAt: now
        })
        PubSub.publishUnsafe<CommandSignal>(db.commandSignals, { kind: "answer", sessionId })
        return { commandId, created: true }
      }),
    existingAnswer: (orgId, sessionId, answer) =>
      Effect.gen(function*() {
        const session = db.sessions.get(sessionId)
        if (session === undefined || session.orgId !== orgId) return yield* notFound(sessionId)
        const key = answerKey(answer)
        const existing = db.commands.find((c) => c.sessionId === sessionId && c.idempotencyKey === key && !LOST_ANSWER_STATUSES.includes(c.status))
        return existing === undefined
          ? undefined
          : { commandId: existing.id, kind: existing.kind, payload: existing.payload, createdAt: existing.createdAt }
      }),
    abort: (orgId, sessionId) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const session = db.sessions.get(sessionId)
        if (session === undefined || session.orgId !== orgId) return yield* notFound(sessionId)
        if (session.abortedAt !== null) {
          const previous = db.commands.findLast((c) => c.sessionId === sessionId && c.kind === "abort")
          if (previous !== undefined) return { commandId: previous.id, created: false }
        }
        session.abortedAt ??= now
        const cancelled = db.commands.filter((command) => command.sessionId === sessionId && command.status === "pending" && command.kind !== "abort")
        for (const command of cancelled) command.status = "cancelled"
        const commandId = enqueue({
          sessionId,
          orgId,
          kind: "abort",
          payload: {},
          idempotencyKey: null,
          traceParent: null,
          createdAt: now
        })
        if (cancelled.length > 0) {
          appendToLog(db, sessionId, cancelled.map((command) => commandCancelledEvent({ commandId: command.id, kind: command.kind }, { abortCommandId: commandId })), now)
        }
        PubSub.publishUnsafe<CommandSignal>(db.commandSignals, { kind: "abort", sessionId })
        return { commandId, created: true }
      })
  }
}
