import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import type { CommandSignal, Revocation, SessionChanged } from "@cowork/services"

/**
 * The NOTIFY channels and their payloads, written once: the stores that notify and the change feed that listens
 * use these names and formats.
 */

/** A session's log grew: payload `<orgId> <sessionId> <lastSequence>`. */
export const EVENTS_CHANNEL = "cowork_events"

/**
 * A command was queued or a session aborted: payload `<prompt|abort|released|answer> <sessionId>`, or
 * `interrupt <sessionId> <runningCommandId> <interruptingCommandId>`.
 */
export const COMMANDS_CHANNEL = "cowork_commands"

/** A channel binding got a claimable delivery: payload `<orgId> <channelBindingId>`. */
export const DELIVERIES_CHANNEL = "cowork_channel_deliveries"

export const parseDeliveryNotice = (payload: string): { readonly orgId: string; readonly channelBindingId: string } | undefined => {
  const [orgId, channelBindingId, ...rest] = payload.split(" ")
  if (rest.length > 0 || orgId === undefined || orgId === "" || channelBindingId === undefined || channelBindingId === "") return undefined
  return { orgId, channelBindingId }
}

/**
 * A workflow was created or resumed, or a run started by hand or webhook: payload `workflow` on `COMMANDS_CHANNEL`
 * (the scheduler re-plans its wake). No command signal has this form, so a worker's parser ignores it.
 */
const WORKFLOW_CHANGED = "workflow"

/** A message on `COMMANDS_CHANNEL`: a command signal for workers, or a workflow change for schedulers. */
export type CommandsMessage = { readonly signal: CommandSignal } | { readonly workflow: true }

export const parseCommandsMessage = (payload: string): CommandsMessage | undefined => {
  if (payload === WORKFLOW_CHANGED) return { workflow: true }
  const signal = parseCommandSignal(payload)
  return signal === undefined ? undefined : { signal }
}

/** `NOTIFY cowork_commands 'workflow'`: inside a transaction it is delivered at the commit (never on a rollback). */
export const notifyWorkflowChanged = (sql: SqlClient.SqlClient) =>
  sql.unsafe(`SELECT pg_notify('${COMMANDS_CHANNEL}', '${WORKFLOW_CHANGED}')`).pipe(Effect.asVoid)

export const formatCommandSignal = (signal: CommandSignal): string =>
  signal.kind === "interrupt"
    ? `interrupt ${signal.sessionId} ${signal.commandId} ${signal.by}`
    : `${signal.kind} ${signal.sessionId}`

const parseSessionChanged = (payload: string): SessionChanged | undefined => {
  const [orgId, sessionId, last, ...rest] = payload.split(" ")
  const lastSequence = Number(last)
  if (rest.length > 0 || orgId === undefined || sessionId === undefined || !Number.isSafeInteger(lastSequence)) return undefined
  return { orgId, sessionId, lastSequence }
}

const parseCommandSignal = (payload: string): CommandSignal | undefined => {
  const [kind, sessionId, ...rest] = payload.split(" ")
  if (kind === "interrupt") {
    const [commandId, by, ...more] = rest
    if (more.length > 0 || sessionId === undefined || sessionId === "" || commandId === undefined || commandId === "" || by === undefined || by === "") {
      return undefined
    }
    return { kind, sessionId, commandId, by }
  }
  if (rest.length > 0 || sessionId === undefined || sessionId === "" || (kind !== "prompt" && kind !== "abort" && kind !== "released" && kind !== "answer")) return undefined
  return { kind, sessionId }
}

/**
 * A credential was revoked: sent on `EVENTS_CHANNEL` (the one channel a web process listens on, so it keeps ONE
 * `LISTEN` connection) with payload `!revoked <token|browser_session|org> <id>`, which no session change can be (an
 * org id never starts with `!`); an older process reading it finds no session change there and ignores it.
 */
const AUTH_CHANNEL = EVENTS_CHANNEL
const REVOKED_PREFIX = "!revoked "

const parseRevocation = (payload: string): Revocation | undefined => {
  if (!payload.startsWith(REVOKED_PREFIX)) return undefined
  const [kind, id, ...rest] = payload.slice(REVOKED_PREFIX.length).split(" ")
  if (rest.length > 0 || id === undefined || id === "" || (kind !== "token" && kind !== "browser_session" && kind !== "org")) return undefined
  return { kind, id }
}

/** A message on `EVENTS_CHANNEL`: a session's log grew, or a credential was revoked. */
export type EventsMessage = { readonly session: SessionChanged } | { readonly revocation: Revocation }

export const parseEventsMessage = (payload: string): EventsMessage | undefined => {
  const revocation = parseRevocation(payload)
  if (revocation !== undefined) return { revocation }
  const session = parseSessionChanged(payload)
  return session === undefined ? undefined : { session }
}

/**
 * Announces revocations with `pg_notify` on `AUTH_CHANNEL`: inside a transaction they are delivered at its commit
 * (never for a rolled-back revocation), otherwise at once.
 */
export const notifyRevocations = (sql: SqlClient.SqlClient, revocations: ReadonlyArray<Revocation>) =>
  revocations.length === 0
    ? Effect.void
    : sql.unsafe(
      `SELECT pg_notify('${AUTH_CHANNEL}', '${REVOKED_PREFIX}' || kind || ' ' || id) FROM unnest($1::text[], $2::text[]) AS r(kind, id)`,
      [revocations.map((r) => r.kind), revocations.map((r) => r.id)]
    ).pipe(Effect.asVoid)
