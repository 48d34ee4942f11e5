import { FakeHttpServer, FakeService, type RecordedRequest } from "./FakeHttpServer.ts"

export interface SlackPost {
  readonly channel: string
  readonly text: string
  readonly threadTs?: string | undefined
  /** `[label, value]` of each button in the message's Block Kit actions blocks. */
  readonly buttons: ReadonlyArray<readonly [string, string]>
  /** The message's `ts` as this fake answered it. */
  readonly ts: string
  /** The Block Kit blocks as posted (what Slack sends back in an interaction's `message.blocks`). */
  readonly blocks: unknown
  readonly at: number
}

const parsedBlocks = (blocks: unknown): unknown => (typeof blocks === "string" ? JSON.parse(blocks) as unknown : blocks)

const buttonsOf = (blocks: unknown): Array<readonly [string, string]> => {
  const parsed = parsedBlocks(blocks)
  if (!Array.isArray(parsed)) return []
  return parsed.flatMap((block: { type?: unknown; elements?: unknown }) =>
    block.type === "actions" && Array.isArray(block.elements)
      ? block.elements.map((e: { text?: { text?: unknown }; value?: unknown }) => [String(e.text?.text), String(e.value)] as const)
      : [])
}

/**
 * A fake Slack Web API on loopback (`/api/<method>`, for `slackApiUrl`): `auth.test`, `chat.postMessage`, `chat.update` and `chat.postEphemeral` with
 * Slack's `{ok, error}` answers, `invalid_auth` for a wrong bearer token, `channel_not_found` for channel `C404`;
 * injected faults are plain HTTP statuses (with `Retry-After` on a 429, as Slack sends it).
 */
export interface SlackUpdate {
  readonly channel: string
  readonly ts: string
  readonly text: string
  readonly buttons: ReadonlyArray<readonly [string, string]>
  readonly blocks: unknown
}

/** A `chat.postEphemeral` call: a note only `user` sees. */
export interface SlackEphemeral {
  readonly channel: string
  readonly user: string
  readonly text: string
  readonly threadTs?: string | undefined
}

export class FakeSlack extends FakeService {
  readonly posts: Array<SlackPost> = []
  /** `chat.postEphemeral` calls (a press not taken, told to the presser). */
  readonly ephemerals: Array<SlackEphemeral> = []
  /** `chat.update` calls (a message edited after its button was pressed). */
  readonly updates: Array<SlackUpdate> = []
  readonly server: FakeHttpServer

  readonly botToken: string

  constructor(botToken: string) {
    super()
    this.botToken = botToken
    this.server = new FakeHttpServer((request) => this.answer(request), (fault) => ({ status: fault.status, body: { ok: false, error: fault.status === 429 ? "ratelimited" : "internal_error" } }))
  }

  /** The `slackApiUrl` (with its trailing slash). */
  get apiUrl(): string {
    return `${this.server.url}/api/`
  }

  waitForPosts(count: number, timeoutMs?: number): Promise<void> {
    return this.server.waitFor(() => this.posts.length >= count, timeoutMs, `${count} Slack chat.postMessage calls`)
  }

  private answer(request: RecordedRequest) {
    if (request.headers.authorization !== `Bearer ${this.botToken}`) return { status: 200, body: { ok: false, error: "invalid_auth" } }
    const method = /^\/api\/([\w.]+)/.exec(request.path)?.[1]
    const contentType = String(request.headers["content-type"] ?? "")
    const params: Record<string, any> = contentType.includes("json")
      ? JSON.parse(request.body) as Record<string, any>
      : Object.fromEntries(new URLSearchParams(request.body))
    switch (method) {
      case "auth.test":
        return { status: 200, body: { ok: true, url: "https://cowork.slack.com/", team: "Cowork", user: "cowork", team_id: "T1", user_id: "U1", bot_id: "B1" } }
      case "chat.postMessage": {
        if (params.channel === "C404") return { status: 200, body: { ok: false, error: "channel_not_found" } }
        const ts = `${Math.floor(request.at / 1000)}.${String(this.posts.length).padStart(6, "0")}`
        this.posts.push({ channel: String(params.channel), text: String(params.text), threadTs: params.thread_ts, buttons: buttonsOf(params.blocks), ts, blocks: parsedBlocks(params.blocks), at: request.at })
        return { status: 200, body: { ok: true, channel: params.channel, ts, message: { text: params.text, ts } } }
      }
      case "chat.update": {
        if (!this.posts.some((post) => post.ts === params.ts && post.channel === params.channel)) {
          return { status: 200, body: { ok: false, error: "message_not_found" } }
        }
        this.updates.push({ channel: String(params.channel), ts: String(params.ts), text: String(params.text), buttons: buttonsOf(params.blocks), blocks: parsedBlocks(params.blocks) })
        return { status: 200, body: { ok: true, channel: params.channel, ts: params.ts, text: params.text } }
      }
      case "chat.postEphemeral": {
        if (params.channel === "C404") return { status: 200, body: { ok: false, error: "channel_not_found" } }
        if (typeof params.user !== "string" || params.user === "") return { status: 200, body: { ok: false, error: "user_not_in_channel" } }
        this.ephemerals.push({ channel: String(params.channel), user: params.user, text: String(params.text), threadTs: params.thread_ts })
        return { status: 200, body: { ok: true, message_ts: `${Math.floor(request.at / 1000)}.${String(this.ephemerals.length).padStart(6, "0")}` } }
      }
      default:
        return { status: 200, body: { ok: false, error: "unknown_method" } }
    }
  }
}
