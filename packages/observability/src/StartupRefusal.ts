import { Config, Data, Effect, Option, Runtime } from "effect"

/**
 * A process that cannot start for a reason the operator can fix (a port in use, a data dir another process holds,
 * no database URL): one JSON log line saying what to change, then a non-zero exit, without a stack trace.
 */
export class StartupRefused extends Data.TaggedError("StartupRefused")<{ readonly message: string }> {
  /** Already logged as one line; the runtime must not print the cause again. */
  readonly [Runtime.errorReported] = false
  readonly [Runtime.errorExitCode] = 1
}

interface Explanation {
  readonly message: string
  readonly annotations: Record<string, unknown>
}

const field = (u: unknown, key: string): unknown =>
  typeof u === "object" && u !== null ? (u as Record<string, unknown>)[key] : undefined

/** The variable that set `port`: the worker's liveness port, the gateway's port (default 8790), else the web port. */
const portVariable = (port: unknown) =>
  Effect.gen(function*() {
    const liveness = yield* Config.option(Config.Int("OPEN_COWORK_CLOUD_LIVENESS_PORT")).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isSome(liveness) && liveness.value === port) return "OPEN_COWORK_CLOUD_LIVENESS_PORT"
    const gateway = yield* Config.Int("OPEN_COWORK_GATEWAY_PORT").pipe(Config.withDefault(8790), Effect.orElseSucceed(() => 8790))
    const web = yield* Config.Int("OPEN_COWORK_CLOUD_PORT").pipe(Config.withDefault(8787), Effect.orElseSucceed(() => 8787))
    if (gateway === port && web !== port) return "OPEN_COWORK_GATEWAY_PORT"
    return "OPEN_COWORK_CLOUD_PORT"
  })

const explainListenError = (cause: unknown) =>
  Effect.gen(function*() {
    const code = field(cause, "code")
    const port = field(cause, "port")
    const address = field(cause, "address")
    const variable = yield* portVariable(port)
    switch (code) {
      case "EADDRINUSE":
        return {
          message: `port ${String(port)} is already in use (${String(address)}:${String(port)}): set ${variable} to a free port or stop the process holding it`,
          annotations: { port, host: address, variable }
        }
      case "EACCES":
        return {
          message: `not allowed to listen on port ${String(port)}: set ${variable} to a port above 1023`,
          annotations: { port, host: address, variable }
        }
      case "EADDRNOTAVAIL":
        return {
          message: `${String(address)} is not an address of this machine: set OPEN_COWORK_CLOUD_HOST to one of its interfaces (127.0.0.1, or 0.0.0.0 for all)`,
          annotations: { host: address, variable: "OPEN_COWORK_CLOUD_HOST" }
        }
      default:
        return undefined
    }
  })

const explain = (error: unknown): Effect.Effect<Explanation | undefined> =>
  Effect.gen(function*() {
    switch (field(error, "_tag")) {
      case "ServeError":
        return yield* explainListenError(field(error, "cause"))
      case "DataDirInUse": {
        const dataDir = String(field(error, "dataDir"))
        const pid = field(error, "pid")
        return {
          message: `cowork is already running on this data dir (${dataDir}${pid === undefined ? "" : `, its Postgres is pid ${String(pid)}`}): ` +
            "stop it first, or set OPEN_COWORK_DATA_DIR to another directory (cowork admin and cowork migrate use the running one)",
          annotations: { dataDir, pid, variable: "OPEN_COWORK_DATA_DIR" }
        }
      }
      case "EmbeddedPortInUse": {
        const port = field(error, "port")
        return {
          message: `port ${String(port)} is already in use (the embedded Postgres, 127.0.0.1:${String(port)}): ` +
            "set OPEN_COWORK_EMBEDDED_PG_PORT to a free port, or unset it to let cowork pick one",
          annotations: { port, host: "127.0.0.1", variable: "OPEN_COWORK_EMBEDDED_PG_PORT" }
        }
      }
      case "DatabaseUrlMissing": {
        const file = String(field(error, "publishedFile"))
        const upRunning = field(error, "upRunning") === true
        return {
          message: upRunning
            ? `OPEN_COWORK_DATABASE_URL is not set: the cowork up running on this data dir publishes its database URL in ${file}; ` +
              `start this process with OPEN_COWORK_DATABASE_URL="$(cat ${file})"`
            : `OPEN_COWORK_DATABASE_URL is not set: point it at your Postgres, or start \`cowork up\`, which publishes its embedded ` +
              `database URL in ${file} while it runs`,
          annotations: { variable: "OPEN_COWORK_DATABASE_URL", publishedFile: file, upRunning }
        }
      }
      default:
        return undefined
    }
  })

/**
 * Runs a process's main effect; a failure with a known operator-fixable reason becomes one JSON log line naming the
 * setting to change and a `StartupRefused` (exit code 1, no stack). Any other failure passes through unchanged.
 */
export const explainStartupFailure = <A, E, R>(main: Effect.Effect<A, E, R>): Effect.Effect<A, E | StartupRefused, R> =>
  Effect.catch(main, (error) =>
    Effect.flatMap(explain(error), (explanation): Effect.Effect<never, E | StartupRefused> =>
      explanation === undefined
        ? Effect.fail(error)
        : Effect.logError(explanation.message).pipe(
          Effect.annotateLogs(explanation.annotations),
          Effect.andThen(Effect.fail(new StartupRefused({ message: explanation.message })))
        )))
