import { Effect } from "effect"
import { Api, GrammyError, HttpError } from "grammy"
import {
  answerData,
  callProvider,
  type ChannelProvider,
  classifyStatus,
  failed,
  type InboundParse,
  InboundRefused,
  type InboundRequest,
  type OutboundMessage,
  parseAnswerData,
  sent,
  type VerifiedInbound
} from "./ChannelProvider.ts"
import { TELEGRAM_SECRET_HEADER, verifyTelegram } from "./InboundSignatures.ts"
import { errorText, scrub } from "./Scrub.ts"

export interface TelegramSettings {
  readonly id: string
  readonly botToken: string
  /** The `secret_token` given to `setWebhook`; inbound updates without it are refused. */
  readonly webhookSecret?: string | undefined
  /** Bot API root (default `https://api.telegram.org`); a local Bot API server or a test fake. */
  readonly apiRoot?: string | undefined
  readonly timeoutMs: number
}

interface TelegramUpdate {
  readonly update_id?: unknown
  readonly message?: {
    readonly message_id?: unknown
    readonly message_thread_id?: unknown
    readonly chat?: { readonly id?: unknown }
    readonly from?: { readonly id?: unknown; readonly is_bot?: unknown }
    readonly text?: unknown
  }
  readonly callback_query?: {
    readonly from?: { readonly id?: unknown }
    readonly data?: unknown
    readonly message?: { readonly chat?: { readonly id?: unknown } }
  }
}

const idText = (value: unknown): string | undefined =>
  typeof value === "number" && Number.isSafeInteger(value) ? String(value) : typeof value === "string" && value !== "" ? value : undefined

export const parseTelegramUpdate = (update: TelegramUpdate): InboundParse => {
  const updateId = idText(update.update_id)
  if (updateId === undefined) return { _tag: "Ignored", reason: "no update_id" }
  const callback = update.callback_query
  if (callback !== undefined) {
    const chat = idText(callback.message?.chat?.id)
    const user = idText(callback.from?.id)
    const answer = parseAnswerData(callback.data)
    if (chat === undefined || user === undefined || answer === undefined) return { _tag: "Ignored", reason: "callback without chat, user or answer" }
    return { _tag: "Message", message: { providerEventId: updateId, externalTarget: chat, externalUserId: user, text: answer.value, answer } }
  }
  const message = update.message
  const chat = idText(message?.chat?.id)
  const user = idText(message?.from?.id)
  if (message === undefined || chat === undefined || user === undefined) return { _tag: "Ignored", reason: "not a message" }
  if (message.from?.is_bot === true) return { _tag: "Ignored", reason: "bot message" }
  if (typeof message.text !== "string" || message.text.trim() === "") return { _tag: "Ignored", reason: "no text" }
  return {
    _tag: "Message",
    message: { providerEventId: updateId, externalTarget: chat, externalThreadId: idText(message.message_thread_id), externalUserId: user, text: message.text }
  }
}

const verify = (settings: TelegramSettings) => (request: InboundRequest): Effect.Effect<VerifiedInbound, InboundRefused> =>
  Effect.gen(function*() {
    const presented = request.headers[TELEGRAM_SECRET_HEADER]
    if (settings.webhookSecret === undefined || presented === undefined) {
      return yield* new InboundRefused({ reason: "missing_signature", message: `${TELEGRAM_SECRET_HEADER} is required` })
    }
    if (!verifyTelegram(settings.webhookSecret, presented)) {
      return yield* new InboundRefused({ reason: "bad_signature", message: `${TELEGRAM_SECRET_HEADER} does not match` })
    }
    const update = yield* Effect.try({
      try: () => JSON.parse(Buffer.from(request.rawBody).toString("utf8")) as TelegramUpdate,
      catch: () => new InboundRefused({ reason: "bad_request", message: "body is not JSON" })
    })
    if (typeof update !== "object" || update === null) return yield* new InboundRefused({ reason: "bad_request", message: "body is not an update" })
    // Telegram's secret is static: a retried update carries the same update_id, which the cloud's event claim dedups.
    return { parse: parseTelegramUpdate(update) }
  })

/** The Telegram Bot API through grammY (`client.apiRoot` points it at a local Bot API server or a fake). */
export const makeTelegramProvider = (settings: TelegramSettings): ChannelProvider => {
  const api = new Api(settings.botToken, {
    apiRoot: settings.apiRoot,
    timeoutSeconds: Math.max(1, Math.ceil(settings.timeoutMs / 1000))
  })
  const secrets = [settings.botToken, ...(settings.webhookSecret === undefined ? [] : [settings.webhookSecret])]
  const classify = (error: unknown) => {
    if (error instanceof GrammyError) {
      const retryAfter = error.parameters.retry_after
      return classifyStatus(
        error.error_code,
        scrub(`telegram ${error.method}: ${error.error_code} ${error.description}`, secrets),
        typeof retryAfter === "number" ? retryAfter * 1000 : undefined
      )
    }
    if (error instanceof HttpError) return failed(scrub(`telegram network error: ${errorText(error.error)}`, secrets))
    return failed(scrub(`telegram: ${errorText(error)}`, secrets))
  }
  const send = (message: OutboundMessage) =>
    callProvider(
      () => {
        const threadId = message.threadId === undefined ? undefined : Number(message.threadId)
        const keyboard = (message.buttons ?? []).flatMap((button) => {
          const data = answerData(button)
          return data === undefined ? [] : [{ text: button.label.slice(0, 64), callback_data: data }]
        })
        return api.sendMessage(message.target, message.text, {
          ...(threadId !== undefined && Number.isSafeInteger(threadId) ? { message_thread_id: threadId } : {}),
          ...(keyboard.length > 0 ? { reply_markup: { inline_keyboard: [keyboard] } } : {})
        })
      },
      (result) => sent(String(result.message_id)),
      classify
    )
  return {
    id: settings.id,
    kind: "telegram",
    send,
    verifyInbound: verify(settings),
    probe: callProvider(() => api.getMe(), () => sent(), classify),
    secrets,
    close: Effect.void
  }
}
