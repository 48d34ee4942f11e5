import { Cause, Context, Effect, Layer, Logger, LogLevel, References, Tracer } from "effect"
import type { Role } from "./MetricsCatalog.ts"
import { redact, redactDeep } from "./Redaction.ts"

/**
 * What a line's `role` names: the role its process runs, or `cli` for a `cowork` command that runs none (`admin …`,
 * `migrate`, `backup`, …; its lines also carry `command`).
 */
export type LogRole = Role | "cli"

/**
 * One JSON object per line. Annotations (`request_id`, `route`, `status`, `duration_ms`, `session_id`, `epoch`,
 * `command_id`, ...) are top-level fields, so `jq 'select(.request_id == "...")'` finds a request's lines.
 * Every string, annotation values and causes included, goes through Redaction first.
 */
interface LogRecord {
  readonly timestamp: string
  readonly level: string
  readonly message: string
  readonly role: LogRole
  readonly [field: string]: unknown
}

const RESERVED = new Set(["timestamp", "level", "message", "role", "details", "spans", "cause", "trace_id", "span_id", "fiber"])

const toRecord = (role: LogRole, options: Logger.Options<unknown>): LogRecord => {
  const parts = Array.isArray(options.message) ? options.message : [options.message]
  const text = parts.filter((part) => typeof part === "string").join(" ")
  const details = parts.filter((part) => typeof part !== "string")

  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options.fiber.getRef(References.CurrentLogAnnotations))) {
    fields[RESERVED.has(key) ? `annotation_${key}` : redact(key)] = redactDeep(value)
  }
  const now = options.date.getTime()
  const spans = options.fiber.getRef(References.CurrentLogSpans)
  const span = Context.getOption(options.fiber.context, Tracer.ParentSpan)

  return {
    timestamp: options.date.toISOString(),
    level: options.logLevel.toLowerCase(),
    message: redact(text),
    role,
    ...fields,
    ...(details.length > 0 ? { details: redactDeep(details.length === 1 ? details[0] : details) } : {}),
    ...(spans.length > 0 ? { spans: Object.fromEntries(spans.map(([label, start]) => [label, now - start])) } : {}),
    ...(span._tag === "Some" ? { trace_id: span.value.traceId, span_id: span.value.spanId } : {}),
    ...(options.cause.reasons.length > 0 ? { cause: redact(Cause.pretty(options.cause)) } : {}),
    fiber: `#${options.fiber.id}`
  }
}

/** A logger writing one redacted JSON line per entry to `write`. */
const jsonLogger = (role: LogRole, write: (line: string) => void): Logger.Logger<unknown, void> =>
  Logger.make((options) => write(JSON.stringify(toRecord(role, options))))

/**
 * Lines for a process stream. Info and debug lines are written in batches: one `write` per 50 ms window instead of
 * one per line (writes to a file or pipe are synchronous in Node, so per-line writes cost the event loop a syscall
 * each — and wake the reader; at a few hundred commands a second, 10 ms windows still cost ~2 % of the process's CPU
 * in writes). A warn, error or fatal line is written at once, with the batch before it, in order: a process killed
 * (SIGKILL, OOM) right after it does not take it along. What is pending is written when the logger's scope closes
 * and when the process exits (`process.exit` included).
 */
const streamLogger = (role: LogRole, stream: NodeJS.WritableStream) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let pending: Array<string> = []
      let timer: ReturnType<typeof setTimeout> | undefined
      const flush = () => {
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        if (pending.length === 0) return
        const text = `${pending.join("\n")}\n`
        pending = []
        stream.write(text)
      }
      const logger = Logger.make((options) => {
        pending.push(JSON.stringify(toRecord(role, options)))
        if (LogLevel.isGreaterThanOrEqualTo(options.logLevel, "Warn")) flush()
        else if (timer === undefined) timer = setTimeout(flush, BATCH_WINDOW_MS).unref()
      })
      process.on("exit", flush)
      return { logger, flush }
    }),
    ({ flush }) =>
      Effect.sync(() => {
        process.off("exit", flush)
        flush()
      })
  ).pipe(Effect.map(({ logger }) => logger))

const BATCH_WINDOW_MS = 50

/** The variable that sets the least severe level a role logs (any case): `debug`, `info` (default), `warn`, `error`. */
const LOG_LEVEL_VARIABLE = "OPEN_COWORK_CLOUD_LOG_LEVEL"

const LEVELS: Record<string, LogLevel.LogLevel> = { trace: "Trace", debug: "Debug", info: "Info", warn: "Warn", warning: "Warn", error: "Error" }

/** The minimum level `value` names; `refused` when it names none (the default, info, is used then). */
export const minimumLogLevel = (value: string | undefined): { readonly level: LogLevel.LogLevel; readonly refused?: string } => {
  const text = value?.trim() ?? ""
  if (text === "") return { level: "Info" }
  const level = LEVELS[text.toLowerCase()]
  return level === undefined ? { level: "Info", refused: text.slice(0, 32) } : { level }
}

/**
 * A process logger at the level OPEN_COWORK_CLOUD_LOG_LEVEL names. An unknown value does not stop the role (its
 * logs are what tells the operator): it logs at info and says, in one warning line, which values are accepted.
 */
const processLogger = (logger: ReturnType<typeof streamLogger>): Layer.Layer<never> =>
  levelFrom(process.env[LOG_LEVEL_VARIABLE], true).pipe(Layer.provideMerge(Logger.layer([logger])))

/** A role's composition builds its logger more than once (its layers, then its main effect): the refusal is said once. */
let refusalLogged = false

/** The minimum log level `value` names, as a layer; an unknown value logs its warning through the logger below. */
const levelFrom = (value: string | undefined, oncePerProcess = false): Layer.Layer<never> => {
  const { level, refused } = minimumLogLevel(value)
  const set = Layer.succeed(References.MinimumLogLevel, level)
  if (refused === undefined) return set
  const warn = Effect.logWarning(`${LOG_LEVEL_VARIABLE} is not a log level; logging at info`).pipe(
    Effect.annotateLogs({ value: refused, accepted: "debug, info, warn, error" })
  )
  const once = Effect.suspend(() => {
    if (oncePerProcess && refusalLogged) return Effect.void
    refusalLogged = true
    return warn
  })
  return Layer.effectDiscard(once).pipe(Layer.provideMerge(set))
}

export const Logging = {
  /** Replaces the default logger with redacted JSON lines on stdout, at the level of OPEN_COWORK_CLOUD_LOG_LEVEL. */
  layer: (role: LogRole): Layer.Layer<never> => processLogger(streamLogger(role, process.stdout)),
  /** The same on stderr, for CLIs whose stdout carries what a command prints for its caller (a token). */
  layerStderr: (role: LogRole): Layer.Layer<never> => processLogger(streamLogger(role, process.stderr)),
  /** The same logger writing to `write`, for tests and for collecting lines into a diagnostics bundle. */
  layerTo: (role: LogRole, write: (line: string) => void): Layer.Layer<never> => Logger.layer([jsonLogger(role, write)]),
  /** The minimum level a value of OPEN_COWORK_CLOUD_LOG_LEVEL names (what `layer` applies), for tests. */
  levelFrom: (value: string | undefined): Layer.Layer<never> => levelFrom(value)
} as const
