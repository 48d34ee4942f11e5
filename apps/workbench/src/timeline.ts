import type { SessionEvent, SessionStatus, SessionView } from "@cowork/domain"

/**
 * A session's timeline, folded from its events in sequence order: the messages (assistant text growing delta by
 * delta), tool calls, permission requests and questions with their answers, errors, retries, aborts, and the queued
 * commands that will not run (dead-lettered by an operator, cancelled by an abort). The same fold reads a replay and
 * the live tail, so a reload and a resumed stream show the same thing.
 */
export type Item =
  | { readonly kind: "user"; readonly key: string; readonly seq: number; readonly text: string }
  | {
    readonly kind: "assistant"
    readonly key: string
    readonly seq: number
    readonly text: string
    readonly final: boolean
    /** The turn ended (failed, aborted) before the message was complete. */
    readonly incomplete?: boolean
    readonly commandId: string | undefined
  }
  | {
    readonly kind: "tool"
    readonly key: string
    readonly seq: number
    readonly tool: string
    readonly status: string
    readonly input: unknown
    readonly output: unknown
  }
  | {
    readonly kind: "permission"
    readonly key: string
    readonly seq: number
    readonly permissionId: string
    readonly permission: string
    readonly patterns: ReadonlyArray<string>
    readonly answer: string | undefined
    readonly commandId: string | undefined
  }
  | {
    readonly kind: "question"
    readonly key: string
    readonly seq: number
    readonly requestId: string
    readonly questions: ReadonlyArray<Question>
    readonly answer: string | undefined
    readonly commandId: string | undefined
  }
  | { readonly kind: "error"; readonly key: string; readonly seq: number; readonly message: string }
  | { readonly kind: "note"; readonly key: string; readonly seq: number; readonly text: string; readonly tone: "retry" | "abort" | "info" }

export interface Question {
  readonly question: string
  readonly header?: string
  readonly multiple?: boolean
  readonly options: ReadonlyArray<{ readonly label: string; readonly description?: string }>
}

export interface Timeline {
  readonly items: ReadonlyArray<Item>
  readonly status: SessionStatus | undefined
  /** The command whose turn is running (its deltas are the streaming message). */
  readonly runningCommand: string | undefined
  readonly lastSequence: number
  /** Artifacts changed: the list should be read again. */
  readonly artifactsVersion: number
}

export const emptyTimeline: Timeline = { items: [], status: undefined, runningCommand: undefined, lastSequence: 0, artifactsVersion: 0 }

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

/**
 * The timeline a `snapshot.required` reload starts from: the projected view's completed messages and the asks its
 * running turn still waits on, in sequence order.
 */
export const fromView = (view: SessionView): Timeline => ({
  items: [
    // The view holds the newest page of messages; say so when older ones exist rather than show a partial history
    // as the whole.
    ...(view.nextCursor === null ? [] : [{
      kind: "note",
      key: "note:older-messages",
      seq: -1,
      text: "Earlier messages are not shown (the session was reloaded from its newest messages)",
      tone: "info"
    } satisfies Item]),
    ...view.messages.map((message): Item =>
    message.role === "user"
      ? { kind: "user", key: `user:${message.messageId}`, seq: message.sequence, text: message.text }
      : {
        kind: "assistant",
        key: `assistant:${message.messageId}`,
        seq: message.sequence,
        text: message.text,
        final: true,
        commandId: message.commandId ?? undefined
      }
    ),
    ...view.pendingPermissions.map((ask): Item => ({
      kind: "permission",
      key: `permission:${ask.permissionId}`,
      seq: ask.sequence,
      permissionId: ask.permissionId,
      permission: ask.permission,
      patterns: ask.patterns,
      answer: undefined,
      commandId: ask.commandId ?? undefined
    })),
    ...view.pendingQuestions.map((ask): Item => ({
      kind: "question",
      key: `question:${ask.requestId}`,
      seq: ask.sequence,
      requestId: ask.requestId,
      questions: Array.isArray(ask.questions) ? (ask.questions as ReadonlyArray<Question>) : [],
      answer: undefined,
      commandId: ask.commandId ?? undefined
    }))
  ].sort((a, b) => a.seq - b.seq),
  status: view.status,
  runningCommand: undefined,
  lastSequence: view.projectedSequence,
  artifactsVersion: 0
})

/** How a timeline note names a command that will not run, by its kind. */
/** An answer to a permission request or question (a command of one of those kinds). */
const isAnswer = (kind: unknown): boolean => kind === "permission_respond" || kind === "question_reply" || kind === "question_reject"

const commandLabel = (kind: unknown): string => {
  switch (kind) {
    case "prompt":
      return "Queued prompt"
    case "permission_respond":
      return "Permission answer"
    case "question_reply":
    case "question_reject":
      return "Question answer"
    default:
      return "Queued command"
  }
}

const upsert = (items: ReadonlyArray<Item>, key: string, make: (previous: Item | undefined) => Item): ReadonlyArray<Item> => {
  const index = items.findIndex((item) => item.key === key)
  if (index === -1) return [...items, make(undefined)]
  const next = items.slice()
  next[index] = make(items[index])
  return next
}

/** A turn that ended leaves no message streaming: what it wrote so far stays, marked incomplete. */
const endStreaming = (items: ReadonlyArray<Item>): ReadonlyArray<Item> =>
  items.map((item) => (item.kind === "assistant" && !item.final ? { ...item, final: true, incomplete: true } : item))

const markAnswered = (items: ReadonlyArray<Item>, key: string, answer: string): ReadonlyArray<Item> =>
  items.map((item) => (item.key === key && (item.kind === "permission" || item.kind === "question") ? { ...item, answer } : item))

export const apply = (timeline: Timeline, event: SessionEvent): Timeline => {
  if (event.sequence <= timeline.lastSequence) return timeline
  const p = (event.payload ?? {}) as Record<string, unknown>
  const seq = event.sequence
  let { items, status, runningCommand, artifactsVersion } = timeline
  switch (event.type) {
    case "prompt.submitted": {
      const commandId = str(p.commandId) ?? event.eventId
      items = upsert(items, `user:${commandId}`, () => ({ kind: "user", key: `user:${commandId}`, seq, text: str(p.text) ?? "" }))
      if (status === "idle" || status === undefined) status = "queued"
      break
    }
    case "session.status":
      if (p.status === "running" || p.status === "idle" || p.status === "queued") status = p.status
      if (p.status === "running") runningCommand = str(p.commandId)
      break
    case "assistant.message": {
      const messageId = str(p.messageId) ?? event.eventId
      const key = `assistant:${messageId}`
      items = upsert(items, key, (previous) => {
        const text = previous?.kind === "assistant" ? previous.text : ""
        return p.final === true
          ? { kind: "assistant", key, seq: previous?.seq ?? seq, text: str(p.text) ?? text, final: true, commandId: runningCommand }
          : { kind: "assistant", key, seq: previous?.seq ?? seq, text: text + (str(p.delta) ?? ""), final: false, commandId: runningCommand }
      })
      break
    }
    case "tool.call": {
      const key = `tool:${str(p.callId) ?? event.eventId}`
      items = upsert(items, key, (previous) => ({
        kind: "tool",
        key,
        seq: previous?.seq ?? seq,
        tool: str(p.tool) ?? "tool",
        status: str(p.status) ?? "completed",
        input: p.input,
        output: p.output
      }))
      break
    }
    case "permission.requested": {
      const permissionId = str(p.permissionId) ?? event.eventId
      const key = `permission:${permissionId}`
      items = upsert(items, key, () => ({
        kind: "permission",
        key,
        seq,
        permissionId,
        permission: str(p.permission) ?? "permission",
        patterns: Array.isArray(p.patterns) ? p.patterns.filter((x): x is string => typeof x === "string") : [],
        answer: undefined,
        commandId: str(p.commandId)
      }))
      break
    }
    case "permission.replied":
      items = markAnswered(items, `permission:${str(p.permissionId)}`, str(p.response) ?? "answered")
      break
    case "question.asked": {
      const requestId = str(p.requestId) ?? event.eventId
      const key = `question:${requestId}`
      items = upsert(items, key, () => ({
        kind: "question",
        key,
        seq,
        requestId,
        questions: Array.isArray(p.questions) ? (p.questions as ReadonlyArray<Question>) : [],
        answer: undefined,
        commandId: str(p.commandId)
      }))
      break
    }
    case "question.replied": {
      const answers = Array.isArray(p.answers) ? (p.answers as ReadonlyArray<ReadonlyArray<string>>).map((a) => a.join(", ")).join("; ") : "answered"
      items = markAnswered(items, `question:${str(p.requestId)}`, answers)
      break
    }
    case "question.rejected":
      items = markAnswered(items, `question:${str(p.requestId)}`, "declined")
      break
    case "runtime.error":
      items = [...endStreaming(items), { kind: "error", key: `error:${seq}`, seq, message: str(p.message) ?? "the runtime failed" }]
      break
    case "command.retried": {
      const commandId = str(p.commandId)
      // The abandoned attempt's partial output is dropped, as the projection drops it.
      items = items.filter((item) => !(item.kind === "assistant" && !item.final && item.commandId === commandId))
      items = [...items, {
        kind: "note",
        key: `note:${seq}`,
        seq,
        tone: "retry",
        text: `Retried: attempt ${String(p.attempt ?? "?")} replaces attempt ${String(p.abandonedAttempt ?? "?")} (its partial output was dropped)`
      }]
      break
    }
    case "command.dead_lettered":
      items = [...items, {
        kind: "note",
        key: `note:${seq}`,
        seq,
        tone: "abort",
        text: `${commandLabel(p.kind)} dead-lettered ${
          p.cause === "attempts_exhausted" ? `after ${String(p.attempts ?? "?")} attempts (its worker was lost each time)` : "by an operator"
        }, it will not run${str(p.reason) === undefined ? "" : `: ${str(p.reason)}`}${isAnswer(p.kind) ? "; answer again while its turn waits" : ""}`
      }]
      break
    case "command.cancelled":
      items = [...items, { kind: "note", key: `note:${seq}`, seq, tone: "info", text: `${commandLabel(p.kind)} cancelled, it will not run (${str(p.reason) ?? "session aborted"})` }]
      break
    case "session.idle":
      if (status !== "aborted") status = "idle"
      runningCommand = undefined
      items = endStreaming(items)
      break
    case "session.aborted":
      status = "aborted"
      runningCommand = undefined
      items = [...endStreaming(items), { kind: "note", key: `note:${seq}`, seq, tone: "abort", text: "Aborted" }]
      break
    case "artifact.created":
      artifactsVersion += 1
      break
    default:
      break
  }
  return { items, status, runningCommand, lastSequence: seq, artifactsVersion }
}
