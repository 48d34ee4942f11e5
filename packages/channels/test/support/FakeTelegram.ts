import { FakeHttpServer, FakeService, type RecordedRequest } from "./FakeHttpServer.ts"

export interface TelegramSend {
  readonly chatId: string
  readonly text: string
  readonly threadId?: number | undefined
  /** The inline keyboard's buttons: `[text, callback_data]`. */
  readonly buttons: ReadonlyArray<readonly [string, string]>
  /** The same buttons by keyboard row. */
  readonly rows: ReadonlyArray<ReadonlyArray<readonly [string, string]>>
  readonly messageId: number
  readonly at: number
}

/** An `editMessageText` (`text` set) or `editMessageReplyMarkup` call on a message this fake sent. */
export interface TelegramEdit {
  readonly method: "editMessageText" | "editMessageReplyMarkup"
  readonly chatId: string
  readonly messageId: number
  readonly text?: string | undefined
  readonly rows: ReadonlyArray<ReadonlyArray<readonly [string, string]>>
}

type Keyboard = { inline_keyboard?: Array<Array<{ text: string; callback_data: string }>> } | undefined
const rowsOf = (markup: unknown) => ((markup as Keyboard)?.inline_keyboard ?? []).map((row) => row.map((button) => [button.text, button.callback_data] as const))

/**
 * A fake Telegram Bot API on loopback (`/bot<token>/<method>`), for grammY's `apiRoot`: `getMe`, `sendMessage`,
 * `answerCallbackQuery`, `editMessageText` and `editMessageReplyMarkup` (on a message it sent) answer like Telegram, a wrong token gets Telegram's 401, and injected faults use Telegram's error shape
 * (`parameters.retry_after` on a 429).
 */
export class FakeTelegram extends FakeService {
  readonly sends: Array<TelegramSend> = []
  /** `answerCallbackQuery` calls: the callback id and the note shown. */
  readonly callbackAnswers: Array<{ readonly callbackId: string; readonly text: string | undefined }> = []
  readonly edits: Array<TelegramEdit> = []
  readonly server: FakeHttpServer
  private nextMessageId = 1

  readonly botToken: string

  constructor(botToken: string) {
    super()
    this.botToken = botToken
    this.server = new FakeHttpServer(
      (request) => this.answer(request),
      (fault) => ({
        status: fault.status,
        body: {
          ok: false,
          error_code: fault.status,
          description: fault.status === 429 ? `Too Many Requests: retry after ${fault.retryAfterSeconds ?? 1}` : "Internal Server Error",
          ...(fault.retryAfterSeconds === undefined ? {} : { parameters: { retry_after: fault.retryAfterSeconds } })
        }
      })
    )
  }

  get apiRoot(): string {
    return this.server.url
  }

  waitForSends(count: number, timeoutMs?: number): Promise<void> {
    return this.server.waitFor(() => this.sends.length >= count, timeoutMs, `${count} Telegram sendMessage calls`)
  }

  private answer(request: RecordedRequest) {
    const match = /^\/bot([^/]+)\/(\w+)/.exec(request.path)
    if (match === null || match[1] !== this.botToken) return { status: 401, body: { ok: false, error_code: 401, description: "Unauthorized" } }
    const body = request.body === "" ? {} : JSON.parse(request.body) as Record<string, unknown>
    switch (match[2]) {
      case "getMe":
        return { status: 200, body: { ok: true, result: { id: 42, is_bot: true, first_name: "Cowork", username: "cowork_bot" } } }
      case "sendMessage": {
        if (body.chat_id === "404") return { status: 400, body: { ok: false, error_code: 400, description: "Bad Request: chat not found" } }
        const messageId = this.nextMessageId++
        const rows = rowsOf(body.reply_markup)
        this.sends.push({
          chatId: String(body.chat_id),
          text: String(body.text),
          threadId: typeof body.message_thread_id === "number" ? body.message_thread_id : undefined,
          buttons: rows.flat(),
          rows,
          messageId,
          at: request.at
        })
        return { status: 200, body: { ok: true, result: { message_id: messageId, date: Math.floor(request.at / 1000), chat: { id: Number(body.chat_id), type: "private" }, text: body.text } } }
      }
      case "answerCallbackQuery":
        if (typeof body.callback_query_id !== "string") return { status: 400, body: { ok: false, error_code: 400, description: "Bad Request: query is too old" } }
        this.callbackAnswers.push({ callbackId: body.callback_query_id, text: typeof body.text === "string" ? body.text : undefined })
        return { status: 200, body: { ok: true, result: true } }
      case "editMessageText":
      case "editMessageReplyMarkup": {
        const sent = this.sends.find((send) => send.chatId === String(body.chat_id) && send.messageId === body.message_id)
        if (sent === undefined) return { status: 400, body: { ok: false, error_code: 400, description: "Bad Request: message to edit not found" } }
        this.edits.push({
          method: match[2] as TelegramEdit["method"],
          chatId: sent.chatId,
          messageId: sent.messageId,
          text: typeof body.text === "string" ? body.text : undefined,
          rows: rowsOf(body.reply_markup)
        })
        return { status: 200, body: { ok: true, result: { message_id: sent.messageId, date: Math.floor(request.at / 1000), chat: { id: Number(sent.chatId), type: "private" }, text: body.text ?? sent.text } } }
      }
      default:
        return { status: 404, body: { ok: false, error_code: 404, description: "Not Found: method not found" } }
    }
  }
}
