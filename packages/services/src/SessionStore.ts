import type { AskAnswer, Conflict, NotFound, PromptQuota, RateLimited, Session, SessionStatus, SessionView } from "@cowork/domain"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { DEFAULT_PROFILE_NAME, type ExistingAnswer } from "./SessionRules.ts"
import { makeSessionStoreMemory } from "./SessionStoreMemory.ts"

export interface CreateSessionInput {
  readonly title?: string | undefined
  readonly profileName?: string | undefined
  readonly projectSource?: unknown
  /** Lower-case tags (see `ThreadsApi`); duplicates are dropped. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** `account:<id>` or `token:<id>` of the caller (the threads' `mine` filter). */
  readonly createdBy?: string | undefined
}

export interface ListSessionsQuery {
  readonly limit: number
  readonly cursor?: string | undefined
  readonly status?: SessionStatus | undefined
  readonly profileName?: string | undefined
  /** Case-insensitive substring of the title. */
  readonly q?: string | undefined
}

/** Which messages a view holds: the newest `limit` (before `cursor`, a view's `nextCursor`, when given). */
export interface ViewPage {
  readonly limit: number
  readonly cursor?: string | undefined
}

export interface SessionPage {
  readonly sessions: ReadonlyArray<Session>
  readonly nextCursor: string | null
  readonly totalEstimate: number
}

export interface EnqueuedCommand {
  readonly commandId: string
  /** False when an earlier prompt with the same idempotency key was returned instead. */
  readonly created: boolean
}

/** What `SessionStore.prompt` queues, and how. */
export interface PromptInput {
  readonly text: string
  /** The agent the runtime runs the prompt with (opencode's `build`, `plan`, …). */
  readonly agent?: string | undefined
  /**
   * What to do when the session already has an unfinished prompt (queued or running): `enqueue` (default) runs
   * it after; `reject` refuses with a `Conflict` naming `multitaskStrategy`; `interrupt` queues it like `enqueue`
   * and signals the session's owner to stop the prompt running at this moment (none running: nothing to stop).
   */
  readonly multitaskStrategy?: "enqueue" | "reject" | "interrupt" | undefined
  readonly idempotencyKey?: string | undefined
  /** W3C `traceparent` of the request that sent the prompt, stored so the run links back to it. */
  readonly traceParent?: string | undefined
  /**
   * The configured quota defaults; the org's overrides (`Quotas`) apply over them, read inside the admission.
   * Checked atomically with the insert: `RateLimited` (details `quota`, `limit`) when the org sent its prompts per
   * hour this clock hour, has its queued commands pending, or would start one session more than it may run at once.
   * An idempotent replay is never refused.
   */
  readonly quota?: PromptQuota | undefined
}

/**
 * The tenant side of sessions: create, list, read, and enqueue commands. Every call is scoped to an org; another
 * org's session is `NotFound`. Enqueueing inserts the command, appends its event and `NOTIFY`s workers in one
 * transaction.
 */
export class SessionStore extends Context.Service<SessionStore, {
  readonly create: (orgId: string, input: CreateSessionInput) => Effect.Effect<Session>
  readonly list: (orgId: string, query: ListSessionsQuery) => Effect.Effect<SessionPage>
  readonly get: (orgId: string, sessionId: string) => Effect.Effect<Session, NotFound>
  /**
   * The projected view with the newest `page.limit` messages (default `DEFAULT_VIEW_MESSAGES`) before `page.cursor`
   * (none: the newest), oldest first, and `nextCursor` to the ones before them (`null`: none). `projectedSequence` is
   * the event sequence the messages reflect, read in the same snapshot. A cursor that does not decode reads as none.
   */
  readonly view: (orgId: string, sessionId: string, page?: ViewPage) => Effect.Effect<SessionView, NotFound>
  /**
   * `Conflict` when the session is aborted. A repeated `idempotencyKey` with the same text returns the first command
   * (even after an abort); with a different text it is a `Conflict` naming the key.
   */
  readonly prompt: (orgId: string, sessionId: string, input: PromptInput) => Effect.Effect<EnqueuedCommand, NotFound | Conflict | RateLimited>
  /**
   * Queues the answer to an ask the session's running turn waits on (a permission request or a question), for its
   * owner to deliver to the live runtime. One answer per ask: the same answer from the same answerer (`answeredBy`,
   * `answeredVia`) returns the first command; any other is a `Conflict` naming the field, `reason: "answered"` and
   * who/where/when (`answeredBy`, `answeredVia`, `answeredAt`). A `Conflict` too when the session is aborted
   * (`reason: "session_aborted"`) or the ask is not pending (`reason: "not_pending"`: never asked, or its turn ended). This is the one entry point for every client (web routes, gateway).
   */
  readonly answer: (orgId: string, sessionId: string, answer: AskAnswer) => Effect.Effect<EnqueuedCommand, NotFound | Conflict>
  /** The answer already queued for the ask `answer` names (whoever gave it, whatever it was), if any. */
  readonly existingAnswer: (orgId: string, sessionId: string, answer: AskAnswer) => Effect.Effect<ExistingAnswer | undefined, NotFound>
  /** Cancels pending commands, marks the session aborted and queues an `abort` command for its owner. */
  readonly abort: (orgId: string, sessionId: string) => Effect.Effect<EnqueuedCommand, NotFound>
}>()("cowork/SessionStore") {
  /** Over the shared `MemoryDatabase`; sessions created without a profile get `defaultProfileName`. */
  static readonly layerMemoryWith = (options: { readonly defaultProfileName: string }): Layer.Layer<SessionStore, never, MemoryDatabase> =>
    Layer.effect(SessionStore, Effect.map(Effect.service(MemoryDatabase), (db) => makeSessionStoreMemory(db, options.defaultProfileName)))

  static readonly layerMemory: Layer.Layer<SessionStore, never, MemoryDatabase> = SessionStore.layerMemoryWith({
    defaultProfileName: DEFAULT_PROFILE_NAME
  })
}
