import type { CommandSignal, SessionChanged } from "@cowork/services"

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

export const formatCommandSignal = (signal: CommandSignal): string =>
  signal.kind === "interrupt"
    ? `interrupt ${signal.sessionId} ${signal.commandId} ${signal.by}`
    : `${signal.kind} ${signal.sessionId}`

export const parseSessionChanged = (payload: string): SessionChanged | undefined => {
  const [orgId, sessionId, last, ...rest] = payload.split(" ")
  const lastSequence = Number(last)
  if (rest.length > 0 || orgId === undefined || sessionId === undefined || !Number.isSafeInteger(lastSequence)) return undefined
  return { orgId, sessionId, lastSequence }
}

export const parseCommandSignal = (payload: string): CommandSignal | undefined => {
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
