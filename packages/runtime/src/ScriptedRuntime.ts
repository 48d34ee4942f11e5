import { RuntimeFailure } from "@cowork/domain"
import { AgentRuntime, type PermissionResponse, type RuntimeEvent, type RuntimeSession, type RuntimeState } from "@cowork/services"
import { Config, Deferred, Effect, Layer, Ref, Stream } from "effect"

/**
 * A deterministic agent runtime for tests, drills and benchmarks. The reply to a prompt is a pure function of
 * its text (ids derive from the command id): `echo: <text>` streamed as deltas, then the full message. Directives
 * in the prompt steer it and are stripped from the echo:
 *
 * - `[[slow:MS]]`   sleep MS (Effect.sleep, so TestClock drives it) before every event
 * - `[[hang]]`      emit the first delta, then never finish until interrupted
 * - `[[fail]]`      fail with `RuntimeFailure` after the first delta
 * - `[[events:N]]`  exactly N delta events (0 allowed)
 * - `[[tool]]`      emit one `ToolCall` before the final message
 * - `[[file:NAME]]` also write the reply to `workspace/NAME` (state with more than one file, for checkpoint drills)
 * - `[[permission]]` first ask permission (`PermissionRequested`, id `per_<commandId>_<attempt>`, permission `edit`) and wait
 *   for the answer: allowed (`once` / `always`), a completed `edit` tool call and the reply ending `[permission once]`;
 *   rejected, an `edit` tool call with status `error` and the reply ending `[permission rejected]`
 * - `[[question]]`  first ask a question (`QuestionAsked`, id `que_<commandId>_<attempt>`, options `yes` / `no`) and wait:
 *   the reply ends `[answered: <labels>]`, or `[question rejected]`. Ask ids are new on every attempt, as opencode's
 *   are: an answer meant for an attempt whose worker died does not answer the retried turn. `[[question:N]]` asks N
 *   questions at once (the first as above, the others with options `red` / `blue`); the reply lists every answer.
 *
 * Session state is a set of files (`workspace/transcript.md` gets one entry per completed prompt) kept per session
 * id for the life of the layer, and round-tripped by `exportState` / `importState`.
 */

export interface Options {
  /** Delay before every event when the prompt has no `[[slow:MS]]` (default 0). */
  readonly delayMs?: number | undefined
  /** Delta events per reply when the prompt has no `[[events:N]]` (default 3). */
  readonly deltas?: number | undefined
}

export interface Script {
  readonly reply: string
  readonly delayMs: number
  readonly deltas: number
  readonly hang: boolean
  readonly fail: boolean
  readonly tool: boolean
  /** `workspace/<file>` receives the reply when set. */
  readonly file: string | undefined
  /** Ask this before replying, and wait for the answer. */
  readonly ask: "permission" | "question" | undefined
  /** Questions the ask carries (`[[question:N]]`, default 1). */
  readonly questions: number
}

export const TRANSCRIPT_PATH = "workspace/transcript.md"

const directivePattern = /\[\[(slow|hang|fail|events|tool|permission|question)(?::(\d+))?\]\]/g
const filePattern = /\[\[file:([A-Za-z0-9._-]{1,64})\]\]/g

/** Reads the directives out of a prompt; the reply echoes the rest of the text. */
const parse = (text: string, options: Options = {}): Script => {
  let delayMs = options.delayMs ?? 0
  let deltas = options.deltas ?? 3
  let hang = false
  let fail = false
  let tool = false
  let ask: Script["ask"]
  let questions = 1
  for (const match of text.matchAll(directivePattern)) {
    const value = match[2] === undefined ? undefined : Number(match[2])
    switch (match[1]) {
      case "slow":
        if (value !== undefined) delayMs = value
        break
      case "events":
        if (value !== undefined) deltas = value
        break
      case "hang":
        hang = true
        break
      case "fail":
        fail = true
        break
      case "tool":
        tool = true
        break
      case "permission":
        ask = match[1]
        break
      case "question":
        ask = match[1]
        questions = Math.min(20, Math.max(1, value ?? 1))
        break
    }
  }
  const file = [...text.matchAll(filePattern)].at(-1)?.[1]
  const rest = text.replace(directivePattern, "").replace(filePattern, "").replace(/\s+/g, " ").trim()
  return { reply: `echo: ${rest}`, delayMs, deltas, hang, fail, tool, file, ask, questions }
}

/** Splits `text` into exactly `count` contiguous chunks (some may be empty when the text is short). */
const chunks = (text: string, count: number): ReadonlyArray<string> =>
  Array.from({ length: count }, (_, i) =>
    text.slice(Math.floor((i * text.length) / count), Math.floor(((i + 1) * text.length) / count)))

const messageIdFor = (commandId: string): string => `msg_${commandId}`

/** The events of a completed turn, in order (without the failure / hang behaviour). */
const replyEvents = (commandId: string, text: string, options: Options = {}, suffix = ""): ReadonlyArray<RuntimeEvent> => {
  const parsed = parse(text, options)
  const script = suffix === "" ? parsed : { ...parsed, reply: `${parsed.reply} ${suffix}` }
  const messageId = messageIdFor(commandId)
  const events: Array<RuntimeEvent> = chunks(script.reply, script.deltas).map((delta) => ({
    _tag: "AssistantDelta",
    messageId,
    delta
  }))
  if (script.tool) {
    events.push({
      _tag: "ToolCall",
      callId: `call_${commandId}`,
      tool: "echo",
      input: { text: script.reply },
      output: { text: script.reply }
    })
  }
  events.push({ _tag: "AssistantMessage", messageId, text: script.reply })
  return events
}

/** The answer a scripted ask waits for. */
type ScriptedAnswer =
  | { readonly _tag: "permission"; readonly response: PermissionResponse }
  | { readonly _tag: "reply"; readonly answers: ReadonlyArray<ReadonlyArray<string>> }
  | { readonly _tag: "reject" }

export const SCRIPTED_QUESTIONS = [{
  question: "Proceed?",
  header: "Confirm",
  options: [{ label: "yes", description: "go on" }, { label: "no", description: "stop here" }]
}]

/** The questions of a `[[question:N]]` prompt: the scripted one, then N-1 more with options `red` / `blue`. */
const scriptedQuestions = (count: number): ReadonlyArray<unknown> => [
  ...SCRIPTED_QUESTIONS,
  ...Array.from({ length: Math.max(0, count - 1) }, (_, i) => ({
    question: `Which colour for part ${i + 2}?`,
    header: `Part ${i + 2}`,
    options: [{ label: "red", description: "warm" }, { label: "blue", description: "cool" }]
  }))
]

/** The ask event of a `[[permission]]` / `[[question]]` / `[[question:N]]` prompt. */
const askEvent = (ask: "permission" | "question", commandId: string, attempt: number, file: string | undefined, questions = 1): RuntimeEvent =>
  ask === "permission"
    ? {
      _tag: "PermissionRequested",
      permissionId: `per_${commandId}_${attempt}`,
      permission: "edit",
      patterns: [`workspace/${file ?? "reply.txt"}`],
      callId: `call_${commandId}`
    }
    : { _tag: "QuestionAsked", requestId: `que_${commandId}_${attempt}`, questions: questions === 1 ? SCRIPTED_QUESTIONS : scriptedQuestions(questions) }

/** What the answer adds to the reply, and the tool call a permission answer produces. */
const afterAnswer = (commandId: string, answer: ScriptedAnswer): { readonly suffix: string; readonly events: ReadonlyArray<RuntimeEvent> } => {
  switch (answer._tag) {
    case "permission": {
      const allowed = answer.response !== "reject"
      return {
        suffix: allowed ? `[permission ${answer.response}]` : "[permission rejected]",
        events: [{
          _tag: "ToolCall",
          callId: `call_${commandId}`,
          tool: "edit",
          input: {},
          status: allowed ? "completed" : "error",
          output: allowed ? { ok: true } : { error: "permission rejected" }
        }]
      }
    }
    case "reply":
      return { suffix: `[answered: ${answer.answers.map((labels) => labels.join("+")).join(", ")}]`, events: [] }
    case "reject":
      return { suffix: "[question rejected]", events: [] }
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const transcriptEntry = (commandId: string, prompt: string, reply: string): string =>
  `## ${commandId}\n\n> ${prompt.replace(/\n/g, "\n> ")}\n\n${reply}\n\n`

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const filesBySession = yield* Ref.make(new Map<string, ReadonlyMap<string, Uint8Array>>())

    const open = (sessionId: string) =>
      Effect.sync((): RuntimeSession => {
        const readFiles = Ref.get(filesBySession).pipe(
          Effect.map((all) => all.get(sessionId) ?? new Map<string, Uint8Array>())
        )
        const writeFiles = (files: ReadonlyMap<string, Uint8Array>) =>
          Ref.update(filesBySession, (all) => new Map(all).set(sessionId, files))

        const appendTranscript = (entry: string) =>
          Effect.flatMap(readFiles, (files) => {
            const previous = files.get(TRANSCRIPT_PATH)
            const next = previous === undefined ? entry : decoder.decode(previous) + entry
            return writeFiles(new Map(files).set(TRANSCRIPT_PATH, encoder.encode(next)))
          })

        const writeFile = (path: string, content: string) =>
          Effect.flatMap(readFiles, (files) => writeFiles(new Map(files).set(path, encoder.encode(content))))

        /** Asks waiting for their answer, by `askKey`-like `kind:id`. */
        const waiting = new Map<string, Deferred.Deferred<ScriptedAnswer>>()

        const replyStream = (commandId: string, text: string, answered?: { readonly suffix: string; readonly events: ReadonlyArray<RuntimeEvent> }) => {
          const parsed = parse(text, options)
          const script = answered === undefined ? parsed : { ...parsed, reply: `${parsed.reply} ${answered.suffix}` }
          const events = [...replyEvents(commandId, text, options, answered?.suffix)]
          if (answered !== undefined) events.splice(events.length - 1, 0, ...answered.events)
          const steps: Array<Effect.Effect<RuntimeEvent, RuntimeFailure>> = events.map((event) =>
            event._tag === "AssistantMessage"
              ? Effect.as(
                Effect.andThen(
                  appendTranscript(transcriptEntry(commandId, text, script.reply)),
                  script.file === undefined ? Effect.void : writeFile(`workspace/${script.file}`, script.reply)
                ),
                event
              )
              : Effect.succeed(event)
          )
          if (script.hang || script.fail) {
            const first = events[0]!._tag === "AssistantDelta" ? [steps[0]!] : []
            const stop: Effect.Effect<RuntimeEvent, RuntimeFailure> = script.hang
              ? Effect.never
              : Effect.fail(new RuntimeFailure({ message: `scripted failure for ${commandId}` }))
            steps.splice(0, steps.length, ...first, stop)
          }
          return Stream.fromIterable(steps).pipe(
            Stream.mapEffect((step) => script.delayMs > 0 ? Effect.andThen(Effect.sleep(script.delayMs), step) : step)
          )
        }

        const prompt: RuntimeSession["prompt"] = ({ attempt, commandId, text }) => {
          const script = parse(text, options)
          if (script.ask === undefined) return replyStream(commandId, text)
          const ask = askEvent(script.ask, commandId, attempt, script.file, script.questions)
          const key = ask._tag === "PermissionRequested" ? `permission:${ask.permissionId}` : `question:${(ask as { requestId: string }).requestId}`
          return Stream.unwrap(Effect.gen(function*() {
            const answer = yield* Deferred.make<ScriptedAnswer>()
            waiting.set(key, answer)
            return Stream.concat(
              Stream.make(ask),
              Stream.unwrap(Effect.map(Deferred.await(answer), (given) => replyStream(commandId, text, afterAnswer(commandId, given))))
            ).pipe(Stream.ensuring(Effect.sync(() => {
              if (waiting.get(key) === answer) waiting.delete(key)
            })))
          }))
        }

        const answer = (key: string, given: ScriptedAnswer) =>
          Effect.suspend(() => {
            const pending = waiting.get(key)
            if (pending === undefined) return Effect.fail(new RuntimeFailure({ message: `no pending ${key.replace(":", " ")}` }))
            waiting.delete(key)
            return Deferred.succeed(pending, given).pipe(Effect.asVoid)
          })

        return {
          prompt,
          exportState: Effect.map(readFiles, (files): RuntimeState => ({
            files: new Map([...files].map(([path, bytes]) => [path, bytes.slice()]))
          })),
          importState: (state) => writeFiles(new Map([...state.files].map(([path, bytes]) => [path, bytes.slice()]))),
          respondPermission: (permissionId, response) => answer(`permission:${permissionId}`, { _tag: "permission", response }),
          replyQuestion: (requestId, answers) => answer(`question:${requestId}`, { _tag: "reply", answers }),
          rejectQuestion: (requestId) => answer(`question:${requestId}`, { _tag: "reject" })
        }
      })

    return AgentRuntime.of({ kind: "scripted", open })
  })

/** The scripted runtime with the given defaults. */
export const layerWith = (options: Options): Layer.Layer<AgentRuntime> => Layer.effect(AgentRuntime, make(options))

/** The scripted runtime with no delay and 3 deltas per reply. */
export const layer: Layer.Layer<AgentRuntime> = layerWith({})

/** Defaults from `OPEN_COWORK_SCRIPTED_DELAY_MS` (0) and `OPEN_COWORK_SCRIPTED_DELTAS` (3). */
export const layerConfig: Layer.Layer<AgentRuntime, Config.ConfigError> = Layer.effect(
  AgentRuntime,
  Effect.gen(function*() {
    const delayMs = yield* Config.Int("OPEN_COWORK_SCRIPTED_DELAY_MS").pipe(Config.withDefault(0))
    const deltas = yield* Config.Int("OPEN_COWORK_SCRIPTED_DELTAS").pipe(Config.withDefault(3))
    return yield* make({ delayMs, deltas })
  })
)
