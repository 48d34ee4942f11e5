import { RuntimeFailure } from "@cowork/domain"
import { AgentRuntime, type RuntimeEvent, type RuntimeSession, type RuntimeState } from "@cowork/services"
import { Config, Effect, Layer, Ref, Stream } from "effect"

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
}

export const TRANSCRIPT_PATH = "workspace/transcript.md"

const directivePattern = /\[\[(slow|hang|fail|events|tool)(?::(\d+))?\]\]/g
const filePattern = /\[\[file:([A-Za-z0-9._-]{1,64})\]\]/g

/** Reads the directives out of a prompt; the reply echoes the rest of the text. */
export const parse = (text: string, options: Options = {}): Script => {
  let delayMs = options.delayMs ?? 0
  let deltas = options.deltas ?? 3
  let hang = false
  let fail = false
  let tool = false
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
    }
  }
  const file = [...text.matchAll(filePattern)].at(-1)?.[1]
  const rest = text.replace(directivePattern, "").replace(filePattern, "").replace(/\s+/g, " ").trim()
  return { reply: `echo: ${rest}`, delayMs, deltas, hang, fail, tool, file }
}

/** Splits `text` into exactly `count` contiguous chunks (some may be empty when the text is short). */
const chunks = (text: string, count: number): ReadonlyArray<string> =>
  Array.from({ length: count }, (_, i) =>
    text.slice(Math.floor((i * text.length) / count), Math.floor(((i + 1) * text.length) / count)))

const messageIdFor = (commandId: string): string => `msg_${commandId}`

/** The events of a completed turn, in order (without the failure / hang behaviour). */
export const replyEvents = (commandId: string, text: string, options: Options = {}): ReadonlyArray<RuntimeEvent> => {
  const script = parse(text, options)
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

        const prompt: RuntimeSession["prompt"] = ({ commandId, text }) => {
          const script = parse(text, options)
          const events = replyEvents(commandId, text, options)
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

        return {
          prompt,
          exportState: Effect.map(readFiles, (files): RuntimeState => ({
            files: new Map([...files].map(([path, bytes]) => [path, bytes.slice()]))
          })),
          importState: (state) => writeFiles(new Map([...state.files].map(([path, bytes]) => [path, bytes.slice()])))
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
