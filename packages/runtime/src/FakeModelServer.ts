import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"

/**
 * A fake OpenAI-compatible model server on loopback (streaming `POST /v1/chat/completions`) for tests and
 * benchmarks of the real runtime. Its answers are a pure function of the conversation, steered by directives in
 * the last user message (so a server in another process answers the same way):
 *
 * - `[[write:NAME]]`  first answer: a `write` tool call creating `NAME` (relative to the workspace) with the text
 *                     `written by the fake model`; after the tool result: `wrote NAME`
 * - `[[bash:CMD]]`    first answer: a `bash` tool call running CMD; after the tool result: `ran`
 * - `[[slow:MS]]`     MS between streamed chunks (to abort mid-stream)
 * - `[[chunks:N]]`    N text chunks (default 3)
 * - anything else     `echo: <text>` (directives stripped)
 *
 * Every request is recorded (headers and body) for assertions: the canary test checks that the provider key
 * arrives here and nowhere else, the history test that earlier turns ride in a later request.
 */

interface RecordedRequest {
  readonly path: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: ChatRequest
  readonly receivedAt: number
  /** When the last byte of the answer was written (undefined while streaming). */
  finishedAt?: number
}

interface ChatMessage {
  readonly role: string
  readonly content?: string | ReadonlyArray<{ readonly type: string; readonly text?: string }> | null
  readonly tool_calls?: ReadonlyArray<unknown>
}

interface ChatRequest {
  readonly model?: string
  readonly stream?: boolean
  readonly messages: ReadonlyArray<ChatMessage>
  readonly tools?: ReadonlyArray<{ readonly function?: { readonly name?: string } }>
}

export interface FakeModelServer {
  readonly url: string
  readonly port: number
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Requests to the completions endpoint, in arrival order. */
  readonly completions: () => ReadonlyArray<RecordedRequest>
  readonly close: () => Promise<void>
}

const textOf = (message: ChatMessage): string => {
  const content = message.content
  if (content === undefined || content === null) return ""
  if (typeof content === "string") return content
  return content.map((part) => part.text ?? "").join("")
}

type Answer =
  | { readonly _tag: "text"; readonly text: string; readonly chunks: number; readonly delayMs: number }
  | { readonly _tag: "tool"; readonly name: string; readonly args: Record<string, unknown>; readonly delayMs: number }

/** The answer to a conversation (exported for tests of the directives themselves). */
const answerFor = (request: ChatRequest): Answer => {
  const messages = request.messages
  const lastUserIndex = messages.findLastIndex((m) => m.role === "user")
  const userText = lastUserIndex === -1 ? "" : textOf(messages[lastUserIndex]!)
  const afterTool = messages.slice(lastUserIndex + 1).some((m) => m.role === "tool")
  const delayMs = Number(/\[\[slow:(\d+)\]\]/.exec(userText)?.[1] ?? 0)
  const chunks = Number(/\[\[chunks:(\d+)\]\]/.exec(userText)?.[1] ?? 3)
  const write = /\[\[write:([A-Za-z0-9._/-]{1,128})\]\]/.exec(userText)?.[1]
  const bash = /\[\[bash:([^\]]{1,512})\]\]/.exec(userText)?.[1]
  if (write !== undefined) {
    return afterTool
      ? { _tag: "text", text: `wrote ${write}`, chunks: 1, delayMs }
      : { _tag: "tool", name: "write", args: { filePath: write, content: "written by the fake model\n" }, delayMs }
  }
  if (bash !== undefined) {
    return afterTool
      ? { _tag: "text", text: "ran", chunks: 1, delayMs }
      : { _tag: "tool", name: "bash", args: { command: bash, description: "run a command" }, delayMs }
  }
  const rest = userText.replace(/\[\[[a-z]+(?::[^\]]*)?\]\]/g, "").replace(/\s+/g, " ").trim()
  return { _tag: "text", text: `echo: ${rest}`, chunks: Math.max(1, chunks), delayMs }
}

const split = (text: string, count: number): ReadonlyArray<string> =>
  Array.from({ length: count }, (_, i) =>
    text.slice(Math.floor((i * text.length) / count), Math.floor(((i + 1) * text.length) / count)))

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const parts: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => parts.push(chunk))
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")))
    req.on("error", reject)
  })

let counter = 0

const streamAnswer = async (res: ServerResponse, request: ChatRequest, answer: Answer): Promise<void> => {
  const id = `chatcmpl-${++counter}`
  const model = request.model ?? "fake"
  const created = Math.floor(Date.now() / 1000)
  const frame = (delta: unknown, finish: string | null, usage?: unknown) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason: finish }], ...(usage === undefined ? {} : { usage }) })}\n\n`
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" })
  const promptTokens = request.messages.reduce((n, m) => n + Math.ceil(textOf(m).length / 4), 0)
  let completionTokens = 0
  res.write(frame({ role: "assistant", content: "" }, null))
  if (answer._tag === "text") {
    for (const chunk of split(answer.text, answer.chunks)) {
      if (answer.delayMs > 0) await sleep(answer.delayMs)
      if (res.destroyed) return
      completionTokens += Math.max(1, Math.ceil(chunk.length / 4))
      res.write(frame({ content: chunk }, null))
    }
    res.write(frame({}, "stop"))
  } else {
    if (answer.delayMs > 0) await sleep(answer.delayMs)
    completionTokens = 10
    res.write(frame({
      tool_calls: [{ index: 0, id: `call_${counter}`, type: "function", function: { name: answer.name, arguments: JSON.stringify(answer.args) } }]
    }, null))
    res.write(frame({}, "tool_calls"))
  }
  res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } })}\n\n`)
  res.end("data: [DONE]\n\n")
}

/** Starts the fake server on 127.0.0.1 (an ephemeral port unless given). */
export const start = (options: {
  readonly port?: number
  /** Requests whose authorization header contains this answer 401 (a provider refusing a key). */
  readonly refuseAuthorizationContaining?: string
} = {}): Promise<FakeModelServer> => {
  const requests: Array<RecordedRequest> = []
  const server: Server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req)
      const path = req.url ?? "/"
      const authorization = req.headers.authorization ?? ""
      if (options.refuseAuthorizationContaining !== undefined && authorization.includes(options.refuseAuthorizationContaining)) {
        requests.push({ path, headers: { ...req.headers }, body: { messages: [] }, receivedAt: Date.now() })
        res.writeHead(401, { "content-type": "application/json" })
        res.end(JSON.stringify({ error: { message: "invalid api key" } }))
        return
      }
      if (req.method === "GET" && path.endsWith("/models")) {
        requests.push({ path, headers: { ...req.headers }, body: { messages: [] }, receivedAt: Date.now() })
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ object: "list", data: [{ id: "fake-model", object: "model" }] }))
        return
      }
      if (req.method !== "POST" || !path.endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" })
        res.end(JSON.stringify({ error: { message: "not found" } }))
        return
      }
      let body: ChatRequest
      try {
        body = JSON.parse(raw) as ChatRequest
      } catch {
        res.writeHead(400, { "content-type": "application/json" })
        res.end(JSON.stringify({ error: { message: "invalid json" } }))
        return
      }
      const recorded: RecordedRequest = { path, headers: { ...req.headers }, body, receivedAt: Date.now() }
      requests.push(recorded)
      const answer = answerFor(body)
      if (body.stream === false) {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({
          id: `chatcmpl-${++counter}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: body.model ?? "fake",
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: answer._tag === "text" ? answer.text : "" } }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
        }))
      } else {
        await streamAnswer(res, body, answer)
      }
      recorded.finishedAt = Date.now()
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        port,
        requests,
        completions: () => requests.filter((r) => r.path.endsWith("/chat/completions")),
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}
