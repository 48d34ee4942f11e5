import { FakeHttpServer, FakeService, type RecordedRequest } from "./FakeHttpServer.ts"

export interface TelegramSend {
  readonly chatId: string
  readonly text: string
  readonly threadId?: number | undefined
  /** The inline keyboard's buttons: `[text, callback_data]`. */
  readonly buttons: ReadonlyArray<readonly [string, string]>
  readonly at: number
}

/**
 * A fake Telegram Bot API on loopback (`/bot<token>/<method>`), for grammY's `apiRoot`: `getMe` and `sendMessage`
 * answer like Telegram, a wrong token gets Telegram's 401, and injected faults use Telegram's error shape
 * (`parameters.retry_after` on a 429).
 */
export class FakeTelegram extends FakeService {
  readonly sends: Array<TelegramSend> = []
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
        this.sends.push({
          chatId: String(body.chat_id),
          text: String(body.text),
          threadId: typeof body.message_thread_id === "number" ? body.message_thread_id : undefined,
          buttons: ((body.reply_markup as { inline_keyboard?: Array<Array<{ text: string; callback_data: string }>> } | undefined)?.inline_keyboard ?? [])
            .flat().map((button) => [button.text, button.callback_data] as const),
          at: request.at
        })
        return { status: 200, body: { ok: true, result: { message_id: messageId, date: Math.floor(request.at / 1000), chat: { id: Number(body.chat_id), type: "private" }, text: body.text } } }
      }
      default:
        return { status: 404, body: { ok: false, error_code: 404, description: "Not Found: method not found" } }
    }
  }
}
