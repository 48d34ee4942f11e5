import { Effect } from "effect"
import { Api, GrammyError, HttpError } from "grammy"
import { answerData, type ButtonView, parseAnswerData } from "./AnswerButtons.ts"
import {
  callProvider,
  type ChannelProvider,
  classifyStatus,
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
    readonly id?: unknown
    readonly from?: { readonly id?: unknown; readonly username?: unknown; readonly first_name?: unknown }
    readonly data?: unknown
    readonly message?: {
      readonly message_id?: unknown
      readonly message_thread_id?: unknown
      readonly chat?: { readonly id?: unknown }
      readonly text?: unknown
      readonly reply_markup?: { readonly inline_keyboard?: unknown }
    }
  }
}

/** Telegram's limits: message text, a callback answer's text, inline keyboard rows and buttons per row. */
const MAX_TEXT = 4_096
const MAX_CALLBACK_TEXT = 200
const MAX_ROWS = 100
const MAX_ROW_BUTTONS = 8

/** `@username`, else the first name (bounded), of the user who pressed. */
const displayName = (from: { readonly username?: unknown; readonly first_name?: unknown } | undefined): string | undefined =>
  typeof from?.username === "string" && /^\w{1,64}$/.test(from.username)
    ? `@${from.username}`
    : typeof from?.first_name === "string" && from.first_name.trim() !== ""
    ? from.first_name.trim().slice(0, 64)
    : undefined

/** The inline keyboard a pressed message carried (`[[{text, callback_data}]]`), as button rows. */
const keyboardOf = (markup: unknown): ReadonlyArray<ReadonlyArray<ButtonView>> | undefined => {
  const rows = (markup as { inline_keyboard?: unknown } | undefined)?.inline_keyboard
  if (!Array.isArray(rows)) return undefined
  return rows.slice(0, MAX_ROWS).map((row) =>
    Array.isArray(row)
      ? row.flatMap((button: { text?: unknown; callback_data?: unknown }) =>
        typeof button?.text === "string" && typeof button.callback_data === "string" ? [{ label: button.text, data: button.callback_data }] : [])
      : []
  )
}

const inlineKeyboard = (rows: ReadonlyArray<ReadonlyArray<ButtonView>>) => ({
  inline_keyboard: rows.map((row) => row.slice(0, MAX_ROW_BUTTONS).map((button) => ({ text: button.label.slice(0, 64), callback_data: button.data })))
})

const idText = (value: unknown): string | undefined =>
  typeof value === "number" && Number.isSafeInteger(value) ? String(value) : typeof value === "string" && value !== "" ? value : undefined

const parseTelegramUpdate = (update: TelegramUpdate): InboundParse => {
  const updateId = idText(update.update_id)
  if (updateId === undefined) return { _tag: "Ignored", reason: "no update_id" }
  const callback = update.callback_query
  if (callback !== undefined) {
    const chat = idText(callback.message?.chat?.id)
    const user = idText(callback.from?.id)
    const answer = parseAnswerData(callback.data)
    const pressedMessage = {
      id: idText(callback.message?.message_id) ?? "",
      text: typeof callback.message?.text === "string" ? callback.message.text : "",
      callbackId: idText(callback.id),
      buttons: keyboardOf(callback.message?.reply_markup),
      by: displayName(callback.from)
    }
    if (chat === undefined || user === undefined || answer === undefined) {
      // Still answered, so the client stops its spinner (when Telegram said which callback this is).
      const press = pressedMessage.callbackId === undefined ? undefined : { target: chat ?? "", userId: user ?? "", message: pressedMessage }
      return { _tag: "Ignored", reason: "callback without chat, user or answer", press }
    }
    return {
      _tag: "Message",
      message: {
        providerEventId: updateId,
        externalTarget: chat,
        // A question asked in a forum topic is answered on that topic's route.
        externalThreadId: idText(callback.message?.message_thread_id),
        externalUserId: user,
        text: "value" in answer ? answer.value : "",
        answer,
        pressedMessage
      }
    }
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

const verify = (settings: TelegramSettings) => (request: InboundRequest, secret?: string): Effect.Effect<VerifiedInbound, InboundRefused> =>
  Effect.gen(function*() {
    const presented = request.headers[TELEGRAM_SECRET_HEADER]
    const expected = secret ?? settings.webhookSecret
    if (expected === undefined || presented === undefined) {
      return yield* new InboundRefused({ reason: "missing_signature", message: `${TELEGRAM_SECRET_HEADER} is required` })
    }
    if (!verifyTelegram(expected, presented)) {
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
        const rows: Array<Array<ButtonView>> = []
        for (const button of message.buttons ?? []) {
          const data = answerData(button)
          if (data === undefined) continue
          const row = button.row ?? 0
          ;(rows[row] ??= []).push({ label: button.label, data })
        }
        const keyboard = rows.filter((row) => row !== undefined && row.length > 0).slice(0, MAX_ROWS)
        return api.sendMessage(message.target, message.text.slice(0, MAX_TEXT), {
          ...(threadId !== undefined && Number.isSafeInteger(threadId) ? { message_thread_id: threadId } : {}),
          ...(keyboard.length > 0 ? { reply_markup: inlineKeyboard(keyboard) } : {})
        })
      },
      (result) => sent(String(result.message_id)),
      classify
    )
  /**
   * Every press is answered (`answerCallbackQuery`: the client's spinner stops, with a short note); then the pressed
   * message shows the answer and who gave it in place of its keyboard, or the selection so far. Best effort.
   */
  const acknowledge = (press: Press, outcome: PressOutcome) =>
    Effect.promise(async () => {
      const { callbackId, id } = press.message
      const note = outcome._tag === "Answered"
        ? `Answered: ${outcome.summary}`
        : outcome._tag === "Selected"
        ? `Noted. ${outcome.remaining} more to choose.`
        : outcome.note
      try {
        if (callbackId !== undefined) await api.answerCallbackQuery(callbackId, { text: note.slice(0, MAX_CALLBACK_TEXT) })
      } catch {
        // Best effort: the client's spinner stops on its own.
      }
      const messageId = Number(id)
      if (press.target === "" || !Number.isSafeInteger(messageId) || messageId <= 0) return
      try {
        if (outcome._tag === "Answered") {
          const answered = `Answered: ${outcome.summary} (by ${press.message.by ?? `user ${press.userId}`})`.slice(0, 1_000)
          const text = `${press.message.text.slice(0, MAX_TEXT - answered.length - 2)}\n\n${answered}`.trim()
          await api.editMessageText(press.target, messageId, text, { reply_markup: { inline_keyboard: [] } })
        } else if (outcome._tag === "Selected") {
          await api.editMessageReplyMarkup(press.target, messageId, { reply_markup: inlineKeyboard(outcome.buttons) })
        }
      } catch {
        // Best effort: the answer was taken (or the selection is in the press's data); the message keeps its buttons.
      }
    })
  return {
    id: settings.id,
    kind: "telegram",
    send,
    acknowledge,
    verifyInbound: verify(settings),
    probe: callProvider(() => api.getMe(), () => sent(), classify),
    secrets,
    close: Effect.void
  }
}
