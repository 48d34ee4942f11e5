import { ErrorCode, LogLevel, type Logger, WebClient } from "@slack/web-api"
import { Effect } from "effect"
import { answerData, type ButtonView, parseAnswerData } from "./AnswerButtons.ts"
import {
  callProvider,
  type ChannelProvider,
  classifyStatus,
  dead,
  failed,
  type InboundParse,
  InboundRefused,
  type InboundRequest,
  type OutboundMessage,
  type Press,
  type PressOutcome,
  sent,
  type VerifiedInbound
} from "./ChannelProvider.ts"
import { isFresh, replayKey, SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, verifySlack } from "./InboundSignatures.ts"
import { errorText, scrub } from "./Scrub.ts"

export interface SlackSettings {
  readonly id: string
  readonly botToken: string
  /** The app's signing secret: inbound Events API requests are refused without a valid `x-slack-signature`. */
  readonly signingSecret?: string | undefined
  /** Web API root (default `https://slack.com/api/`), for a test fake. */
  readonly apiUrl?: string | undefined
  readonly timeoutMs: number
}

/** Slack errors that mean the bot's credential is bad; the rest of `ok:false` answers are permanent for this message. */
const AUTH_ERRORS = new Set(["invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission", "missing_scope"])
/** `ok:false` answers worth another try. */
const TRANSIENT_ERRORS = new Set(["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"])

const silent: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  setLevel: () => {},
  getLevel: () => LogLevel.ERROR,
  setName: () => {}
}

interface SlackEnvelope {
  readonly type?: unknown
  readonly challenge?: unknown
  readonly event_id?: unknown
  readonly event?: {
    readonly type?: unknown
    readonly subtype?: unknown
    readonly bot_id?: unknown
    readonly user?: unknown
    readonly channel?: unknown
    readonly text?: unknown
    readonly ts?: unknown
    readonly thread_ts?: unknown
  }
}

const str = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

const parseSlackEnvelope = (body: SlackEnvelope): InboundParse => {
  if (body.type === "url_verification") {
    const challenge = str(body.challenge)
    return challenge === undefined ? { _tag: "Ignored", reason: "challenge without a value" } : { _tag: "Challenge", challenge }
  }
  if (body.type !== "event_callback") return { _tag: "Ignored", reason: "not an event callback" }
  const eventId = str(body.event_id)
  const event = body.event
  if (eventId === undefined || event === undefined) return { _tag: "Ignored", reason: "no event" }
  if (event.type !== "message" && event.type !== "app_mention") return { _tag: "Ignored", reason: "not a message" }
  if (event.bot_id !== undefined || event.subtype !== undefined) return { _tag: "Ignored", reason: "bot message or edit" }
  const channel = str(event.channel)
  const user = str(event.user)
  const text = str(event.text)
  if (channel === undefined || user === undefined || text === undefined) return { _tag: "Ignored", reason: "message without channel, user or text" }
  return {
    _tag: "Message",
    message: { providerEventId: eventId, externalTarget: channel, externalThreadId: str(event.thread_ts) ?? str(event.ts), externalUserId: user, text }
  }
}

/** A Block Kit `block_actions` interaction (the `payload=` of an interactivity request): a pressed answer button. */
interface SlackInteraction {
  readonly type?: unknown
  readonly trigger_id?: unknown
  readonly user?: { readonly id?: unknown }
  readonly channel?: { readonly id?: unknown }
  readonly container?: { readonly channel_id?: unknown; readonly message_ts?: unknown; readonly thread_ts?: unknown }
  readonly message?: { readonly ts?: unknown; readonly thread_ts?: unknown; readonly text?: unknown; readonly blocks?: unknown }
  readonly actions?: ReadonlyArray<{ readonly action_id?: unknown; readonly value?: unknown; readonly action_ts?: unknown }>
}

/** The `block_id` of the answer buttons the gateway posts with a question or permission request (`_<row>` after the first). */
const SLACK_ANSWER_BLOCK = "cowork_answer"
/** A Slack user id (`U…` / `W…`): what may go into a `<@…>` mention. */
const SLACK_USER_ID = /^[UW][A-Z0-9]{1,31}$/

/** Block Kit's limits: elements per actions block, blocks per message, section text. */
const MAX_ELEMENTS = 25
const MAX_BLOCKS = 50
const MAX_SECTION_TEXT = 3_000

/** The answer buttons of a message's Block Kit (its actions blocks), as rows. */
const buttonRowsOf = (blocks: unknown): ReadonlyArray<ReadonlyArray<ButtonView>> | undefined => {
  if (!Array.isArray(blocks)) return undefined
  return blocks.slice(0, MAX_BLOCKS).flatMap((block: { type?: unknown; elements?: unknown }) =>
    block?.type === "actions" && Array.isArray(block.elements)
      ? [block.elements.flatMap((element: { text?: { text?: unknown }; value?: unknown }) =>
        typeof element?.value === "string" ? [{ label: typeof element.text?.text === "string" ? element.text.text : "", data: element.value }] : [])]
      : []
  )
}

/** Block Kit for a text and rows of answer buttons: a section, then one actions block per row. */
const blocksOf = (text: string, rows: ReadonlyArray<ReadonlyArray<ButtonView>>): Array<unknown> => {
  let index = 0
  const actions = rows.filter((row) => row.length > 0).slice(0, MAX_BLOCKS - 1).map((row, r) => ({
    type: "actions",
    block_id: r === 0 ? SLACK_ANSWER_BLOCK : `${SLACK_ANSWER_BLOCK}_${r}`,
    elements: row.slice(0, MAX_ELEMENTS).map((button) => {
      const style = button.data.endsWith(":reject") ? { style: "danger" } : index === 0 ? { style: "primary" } : {}
      return { type: "button", action_id: `answer_${index++}`, text: { type: "plain_text", text: button.label.slice(0, 75) || "?" }, value: button.data, ...style }
    })
  }))
  return [{ type: "section", text: { type: "plain_text", text: text.slice(0, MAX_SECTION_TEXT) || " " } }, ...actions]
}

/**
 * A pressed answer button: an `answer` on the thread the question was posted in (the session's route; a message
 * outside a thread routes by its channel). The provider event id is Slack's `trigger_id` (unique per press), so a
 * replayed or re-sent interaction answers once.
 */
const parseSlackInteraction = (body: SlackInteraction): InboundParse => {
  if (body.type !== "block_actions") return { _tag: "Ignored", reason: "not a block action" }
  const action = Array.isArray(body.actions) ? body.actions[0] : undefined
  const answer = parseAnswerData(action?.value)
  const channel = str(body.channel?.id) ?? str(body.container?.channel_id)
  const user = str(body.user?.id)
  if (action === undefined || answer === undefined) return { _tag: "Ignored", reason: "not an answer button" }
  if (channel === undefined || user === undefined) return { _tag: "Ignored", reason: "action without channel or user" }
  const eventId = str(body.trigger_id) ?? [str(body.container?.message_ts), str(action.action_ts), user].join(":")
  const pressedTs = str(body.message?.ts) ?? str(body.container?.message_ts)
  return {
    _tag: "Message",
    message: {
      providerEventId: `slack-action:${eventId}`.slice(0, 200),
      externalTarget: channel,
      externalThreadId: str(body.message?.thread_ts) ?? str(body.container?.thread_ts),
      externalUserId: user,
      text: "value" in answer ? answer.value : "",
      answer,
      pressedMessage: pressedTs === undefined
        ? undefined
        : { id: pressedTs, text: str(body.message?.text) ?? "", buttons: buttonRowsOf(body.message?.blocks) }
    }
  }
}

/** Block Kit for a message with answer buttons: the text, then one actions block per row (a question's options). */
export const slackBlocks = (message: OutboundMessage): ReadonlyArray<unknown> | undefined => {
  const rows: Array<Array<ButtonView>> = []
  for (const button of message.buttons ?? []) {
    const data = answerData(button, 2_000)
    if (data !== undefined) (rows[button.row ?? 0] ??= []).push({ label: button.label, data })
  }
  const filled = rows.filter((row) => row !== undefined && row.length > 0)
  return filled.length === 0 ? undefined : blocksOf(message.text, filled)
}

const verify = (settings: SlackSettings) => (request: InboundRequest, secret?: string): Effect.Effect<VerifiedInbound, InboundRefused> =>
  Effect.gen(function*() {
    const timestamp = request.headers[SLACK_TIMESTAMP_HEADER]
    const signature = request.headers[SLACK_SIGNATURE_HEADER]
    const signingSecret = secret ?? settings.signingSecret
    if (signingSecret === undefined || timestamp === undefined || signature === undefined) {
      return yield* new InboundRefused({ reason: "missing_signature", message: `${SLACK_TIMESTAMP_HEADER} and ${SLACK_SIGNATURE_HEADER} are required` })
    }
    if (!isFresh(timestamp, request.nowMs)) {
      return yield* new InboundRefused({ reason: "stale_timestamp", message: `${SLACK_TIMESTAMP_HEADER} is outside the 5-minute window` })
    }
    if (!verifySlack(signingSecret, timestamp, request.rawBody, signature)) {
      return yield* new InboundRefused({ reason: "bad_signature", message: `${SLACK_SIGNATURE_HEADER} does not match` })
    }
    const raw = Buffer.from(request.rawBody).toString("utf8")
    // Interactivity (a pressed button) arrives form-encoded as `payload=<json>`; the Events API as JSON.
    const interactive = (request.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded") || raw.startsWith("payload=")
    const body = yield* Effect.try({
      try: () => JSON.parse(interactive ? new URLSearchParams(raw).get("payload") ?? "" : raw) as unknown,
      catch: () => new InboundRefused({ reason: "bad_request", message: interactive ? "payload is not JSON" : "body is not JSON" })
    })
    if (typeof body !== "object" || body === null) return yield* new InboundRefused({ reason: "bad_request", message: "body is not an event" })
    // Slack re-sends a failed event with a new signature and the same event_id: the cloud's event claim dedups it.
    return {
      parse: interactive ? parseSlackInteraction(body as SlackInteraction) : parseSlackEnvelope(body as SlackEnvelope),
      replayKey: replayKey(settings.id, signature)
    }
  })

/** The Slack Web API through `@slack/web-api` (`slackApiUrl` points it at a fake); no client-side retries: the feed retries. */
export const makeSlackProvider = (settings: SlackSettings): ChannelProvider => {
  const client = new WebClient(settings.botToken, {
    ...(settings.apiUrl === undefined ? {} : { slackApiUrl: settings.apiUrl }),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: settings.timeoutMs,
    logger: silent,
    logLevel: LogLevel.ERROR
  })
  const secrets = [settings.botToken, ...(settings.signingSecret === undefined ? [] : [settings.signingSecret])]
  const classify = (error: unknown) => {
    const coded = error as { code?: unknown; retryAfter?: unknown; statusCode?: unknown; data?: { error?: unknown }; headers?: Record<string, string> }
    switch (coded.code) {
      case ErrorCode.RateLimitedError:
        return failed("slack: rate limited", typeof coded.retryAfter === "number" ? coded.retryAfter * 1000 : undefined, 429)
      case ErrorCode.HTTPError: {
        const status = typeof coded.statusCode === "number" ? coded.statusCode : 500
        return classifyStatus(status, scrub(`slack: HTTP ${status}`, secrets))
      }
      case ErrorCode.PlatformError: {
        const reason = typeof coded.data?.error === "string" ? coded.data.error : "unknown"
        if (AUTH_ERRORS.has(reason)) return dead(`slack: ${reason}`, undefined, true)
        if (TRANSIENT_ERRORS.has(reason)) return failed(`slack: ${reason}`)
        return dead(scrub(`slack: ${reason}`, secrets))
      }
      default:
        return failed(scrub(`slack network error: ${errorText(error)}`, secrets))
    }
  }
  const send = (message: OutboundMessage) =>
    callProvider(
      () => {
        const blocks = slackBlocks(message)
        return client.chat.postMessage({
          channel: message.target,
          text: message.text,
          ...(message.threadId === undefined ? {} : { thread_ts: message.threadId }),
          ...(blocks === undefined ? {} : { blocks: blocks as Array<never> })
        })
      },
      (result) => sent(typeof result.ts === "string" ? result.ts : undefined),
      classify
    )
  /**
   * The pressed message keeps its text; its buttons give way to who answered what, or show the selection so far.
   * A press not taken leaves the message as it is (the buttons stay for whoever may answer) and tells the presser why,
   * in an ephemeral message only they see (`chat.postEphemeral`, in the pressed message's thread), as Telegram's
   * `answerCallbackQuery` does.
   */
  const acknowledge = (press: Press, outcome: PressOutcome) =>
    Effect.promise(async () => {
      if (outcome._tag === "NotTaken") {
        if (press.target === "" || press.userId === "") return
        try {
          // "Already answered by @someone": a Slack user id becomes a mention (anything else is left out, never markup).
          const by = outcome.answeredBy !== undefined && SLACK_USER_ID.test(outcome.answeredBy) ? outcome.answeredBy : undefined
          await client.chat.postEphemeral({
            channel: press.target,
            user: press.userId,
            text: (by === undefined ? outcome.note : `Already answered by <@${by}>${outcome.answeredAt === undefined ? "" : ` at ${outcome.answeredAt}`}.`)
              .slice(0, MAX_SECTION_TEXT),
            ...(press.threadId === undefined ? {} : { thread_ts: press.threadId })
          })
        } catch {
          // Best effort: nothing was taken, and the buttons are still there.
        }
        return
      }
      if (press.message.id === "") return
      const text = press.message.text
      const answered = outcome._tag === "Answered" ? `Answered ${outcome.summary} (<@${press.userId}>)` : undefined
      try {
        await client.chat.update({
          channel: press.target,
          ts: press.message.id,
          text: answered === undefined ? text || " " : `${text}\n${answered}`.trim(),
          blocks: (answered === undefined && outcome._tag === "Selected"
            ? blocksOf(text, outcome.buttons)
            : [
              { type: "section", text: { type: "plain_text", text: text.slice(0, MAX_SECTION_TEXT) || " " } },
              { type: "context", elements: [{ type: "mrkdwn", text: answered ?? "" }] }
            ]) as Array<never>
        })
      } catch {
        // Best effort: the answer was taken; the buttons stay (a second press is refused by the cloud).
      }
    })
  return {
    id: settings.id,
    kind: "slack",
    send,
    acknowledge,
    verifyInbound: verify(settings),
    probe: callProvider(() => client.auth.test(), () => sent(), classify),
    secrets,
    close: Effect.void
  }
}
