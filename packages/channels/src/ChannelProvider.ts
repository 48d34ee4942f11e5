import { Data, Effect } from "effect"
import type { AnswerButton, ButtonView, PressedAnswer } from "./AnswerButtons.ts"

/** The channel kinds a binding can name. */
export const PROVIDER_KINDS = ["telegram", "slack", "email", "webhook"] as const
export type ProviderKind = (typeof PROVIDER_KINDS)[number]

/** A provider's state as `/ready` and `open_cowork_gateway_provider_state{state}` report it. */
export const PROVIDER_STATES = ["starting", "healthy", "degraded", "auth_failed", "down"] as const
export type ProviderState = (typeof PROVIDER_STATES)[number]

/** One message the gateway sends on behalf of a delivery. */
export interface OutboundMessage {
  /** The delivery's stable idempotency key (the same on every attempt). */
  readonly idempotencyKey: string
  /** Chat id (Telegram), channel id (Slack), address (email), URL (webhook). */
  readonly target: string
  /** The thread to answer in, when the channel has threads (Slack `thread_ts`, Telegram reply-to id). */
  readonly threadId?: string | undefined
  readonly text: string
  /** What the session asked for: `assistant.message`, `question.asked`, `permission.requested`. */
  readonly eventType: string
  /** The JSON body an outbound webhook posts (other providers render `text`). */
  readonly payload?: unknown
  /**
   * Answer buttons for a question or permission request (Telegram inline keyboard, Slack Block Kit): each press comes
   * back as an inbound message with its `answer` (see AnswerButtons.ts for the data they carry).
   */
  readonly buttons?: ReadonlyArray<AnswerButton> | undefined
}

/**
 * What one send attempt came to, in the terms of the delivery feed's ack: `sent`; `failed` (worth retrying: 5xx,
 * timeouts, network errors, 429, with the provider's `Retry-After` when it gave one); `dead` (a permanent refusal
 * such as a 4xx for a chat that does not exist). `authFailed` marks a credential refusal, which also moves the
 * provider to `auth_failed`.
 */
export type SendOutcome =
  | { readonly _tag: "Sent"; readonly providerMessageId?: string | undefined }
  | { readonly _tag: "Failed"; readonly error: string; readonly retryAfterMs?: number | undefined; readonly status?: number | undefined }
  | {
    readonly _tag: "Dead"
    readonly error: string
    readonly authFailed: boolean
    readonly status?: number | undefined
    /** The binding's target may not be reached (a webhook URL resolving to a non-public address): the binding's error. */
    readonly targetRefused?: boolean | undefined
  }

export const sent = (providerMessageId?: string): SendOutcome => ({ _tag: "Sent", providerMessageId })
export const failed = (error: string, retryAfterMs?: number, status?: number): SendOutcome => ({ _tag: "Failed", error, retryAfterMs, status })
export const dead = (error: string, status?: number, authFailed = false): SendOutcome => ({ _tag: "Dead", error, status, authFailed })

/**
 * One call to a provider's API as a `SendOutcome`: `outcome` of what it returned, or the provider's `classify` of what
 * it threw (never a failed effect).
 */
export const callProvider = <A>(
  call: () => Promise<A>,
  outcome: (result: A) => SendOutcome,
  classify: (error: unknown) => SendOutcome
): Effect.Effect<SendOutcome> =>
  Effect.promise(async () => {
    try {
      return outcome(await call())
    } catch (error) {
      return classify(error)
    }
  })

/**
 * The usual HTTP mapping: 429 and 408/425 are `failed` (with the server's delay on a 429), any 5xx is `failed`,
 * 401/403 are `dead` and a credential problem, other 4xx are `dead`.
 */
export const classifyStatus = (status: number, error: string, retryAfterMs?: number): SendOutcome => {
  if (status === 429) return failed(error, retryAfterMs, status)
  if (status === 408 || status === 425 || status >= 500) return failed(error, undefined, status)
  if (status === 401 || status === 403) return dead(error, status, true)
  return dead(error, status)
}

/** `Retry-After` in seconds or an HTTP date, as milliseconds from `nowMs`. */
export const parseRetryAfter = (value: string | null | undefined, nowMs = Date.now()): number | undefined => {
  if (value === null || value === undefined || value.trim() === "") return undefined
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}

/** A message that arrived from a channel, normalised: it becomes a prompt on the bound session. */
export interface InboundMessage {
  /** The provider's own id for the event (Telegram `update_id`, Slack `event_id`, the webhook's event id): the prompt's idempotency key. */
  readonly providerEventId: string
  /** Chat / channel / address the message came from: the binding's external target. */
  readonly externalTarget: string
  readonly externalThreadId?: string | undefined
  /** The external user (resolved to an org principal by the cloud). */
  readonly externalUserId: string
  readonly text: string
  /** A button press answering a question or permission (`callback_data` / Slack action value). */
  readonly answer?: PressedAnswer | undefined
  /** The message whose button was pressed, so the provider can answer the press and show the answer on it. */
  readonly pressedMessage?: PressedMessage | undefined
}

/** The chat message whose answer button was pressed, as the provider reported it. */
interface PressedMessage {
  /** Telegram `message_id`, Slack `ts` (empty when the provider did not include the message). */
  readonly id: string
  readonly text: string
  /** Telegram's `callback_query.id`: answered (`answerCallbackQuery`) whatever came of the press. */
  readonly callbackId?: string | undefined
  /** The message's buttons as rows, when the provider sent them along (to show a partial selection). */
  readonly buttons?: ReadonlyArray<ReadonlyArray<ButtonView>> | undefined
  /** Who pressed, as the chat shows them (Telegram `@username` or first name), when the provider said. */
  readonly by?: string | undefined
}

/** A press on the chat it came from, for `ChannelProvider.acknowledge`. */
export interface Press {
  readonly target: string
  /** The thread the pressed message is in (Slack `thread_ts`), when the provider said: a note goes there. */
  readonly threadId?: string | undefined
  readonly userId: string
  readonly message: PressedMessage
}

/**
 * What came of a press: `Answered` (the cloud took the answer: the message shows it in place of its buttons);
 * `Selected` (a pick of an ask with more questions: the message shows the selection so far, as these buttons);
 * `NotTaken` (a duplicate, an ask no longer pending, a user the binding does not admit, data the gateway did not make).
 */
export type PressOutcome =
  | { readonly _tag: "Answered"; readonly summary: string }
  | { readonly _tag: "Selected"; readonly buttons: ReadonlyArray<ReadonlyArray<ButtonView>>; readonly remaining: number }
  | {
    readonly _tag: "NotTaken"
    readonly note: string
    /** The ask was already answered from this kind of chat by this user (the provider's user id): a provider may name them. */
    readonly answeredBy?: string | undefined
    /** When it was (`2026-12-01 04:12 UTC`), with `answeredBy`. */
    readonly answeredAt?: string | undefined
  }

/** What an inbound request carried once its signature was accepted. */
export type InboundParse =
  | { readonly _tag: "Message"; readonly message: InboundMessage }
  /** Slack's URL verification handshake: answer the challenge, nothing else. */
  | { readonly _tag: "Challenge"; readonly challenge: string }
  /** A valid request the gateway does not act on (a bot's own message, an edit, a reaction); a press is still answered. */
  | { readonly _tag: "Ignored"; readonly reason: string; readonly press?: Press | undefined }

/** Why an inbound request was refused (each a `webhook_requests_total{outcome}`). */
export class InboundRefused extends Data.TaggedError("InboundRefused")<{
  readonly reason: "missing_signature" | "stale_timestamp" | "bad_signature" | "replayed" | "bad_request"
  readonly message: string
}> {}

/** The raw inbound request as the gateway's HTTP route hands it over (headers lower-cased). */
export interface InboundRequest {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly rawBody: Uint8Array
  readonly nowMs: number
}

/** A verified request: its parse and, when the scheme has one, the signature to record once durably. */
export interface VerifiedInbound {
  readonly parse: InboundParse
  /** Replay key (a digest of the signature), consumed once through the cloud. */
  readonly replayKey?: string | undefined
}

/** One configured provider instance (`providers[].id`, the `:providerId` of `/webhooks/:providerId`). */
export interface ChannelProvider {
  readonly id: string
  readonly kind: ProviderKind
  readonly send: (message: OutboundMessage) => Effect.Effect<SendOutcome>
  /**
   * Checks the signature and parses an inbound request; absent when the kind takes no inbound (email without a
   * relay). `secret`: a binding's own inbound secret, checked in place of the provider's (Telegram's secret token,
   * Slack's signing secret, the `v1` webhook / mail-relay secret).
   */
  readonly verifyInbound?: ((request: InboundRequest, secret?: string) => Effect.Effect<VerifiedInbound, InboundRefused>) | undefined
  /**
   * After a press: answers it (Telegram's `answerCallbackQuery`, so the client stops its spinner; Slack: a press not
   * taken gets an ephemeral note only the presser sees) and shows what came of it on the pressed message (the answer in
   * place of the buttons, or the selection so far). Best effort and bounded by the caller: a failure changes nothing
   * about the answer.
   */
  readonly acknowledge?: ((press: Press, outcome: PressOutcome) => Effect.Effect<void>) | undefined
  /** A cheap credential/connectivity check (Telegram `getMe`, Slack `auth.test`, SMTP `verify`); true when usable. */
  readonly probe: Effect.Effect<SendOutcome>
  /** Strings the provider holds that must never leave the process (tokens, passwords, signing secrets). */
  readonly secrets: ReadonlyArray<string>
  readonly close: Effect.Effect<void>
}
