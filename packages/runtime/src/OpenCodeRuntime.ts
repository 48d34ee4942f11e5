import { readFile, rm, writeFile } from "node:fs/promises"
import * as path from "node:path"
import { RuntimeFailure } from "@cowork/domain"
import { AgentRuntime, DataDir, type RuntimeEvent, type RuntimeSession, type RuntimeSessionContext, type RuntimeState } from "@cowork/services"
import { Cause, Config, Effect, Layer, Option, Queue, Scope, Semaphore, Stream } from "effect"
import { defaultBinary, OpenCodeProcess, type ProviderConfig, sessionPaths } from "./OpenCodeProcess.ts"
import * as ModelProxy from "./ModelProxy.ts"
import * as OpenCodeState from "./OpenCodeState.ts"
import { OpenCodeTurn } from "./OpenCodeTurn.ts"

/**
 * The OpenCode agent runtime: one `opencode serve` child per open session (started on the session's first use,
 * stopped when the scope `open` ran in closes: the session fiber ending, or the worker evicting it from its warm
 * set). Each session has a fixed directory `<root>/sessions/<sessionId>/` (workspace, isolated XDG roots, config
 * dir), so a checkpoint restores on any worker at the same absolute path. Opencode never sees a provider key: it
 * calls the model endpoint `endpoint` gives for the session (the worker's loopback model proxy) with a placeholder.
 */

export interface Options {
  /** The runtime root: sessions live under `<root>/sessions/<sessionId>`. */
  readonly root: string
  /** The opencode binary (default: the one the platform package `opencode-linux-x64` installed). */
  readonly binary?: string | undefined
  /** Spawn to healthy, generous: 2–10 s on a loaded 2-core machine (default 60 s). */
  readonly startTimeoutMs?: number | undefined
  /** Opencode permission rules written into its config (e.g. `{ edit: "ask" }`). */
  readonly permission?: Readonly<Record<string, unknown>> | undefined
  /** The model endpoint for a session, acquired in the session's scope. */
  readonly endpoint: (
    sessionId: string,
    context: RuntimeSessionContext
  ) => Effect.Effect<ProviderConfig, RuntimeFailure, Scope.Scope>
  /** Receives opencode's stdout/stderr lines (debug logging). */
  readonly onOutput?: ((sessionId: string, line: string) => void) | undefined
  /** Told where a session's opencode listens and how to authenticate (tests probe its HTTP API with it). */
  readonly onStarted?: ((sessionId: string, server: { readonly url: string; readonly authorization: string }) => void) | undefined
}

/** A fixed endpoint for every session (a fake model server in tests, or a proxy that needs no per-session path). */
export const staticEndpoint = (provider: { readonly baseURL: string; readonly model: string; readonly id?: string; readonly apiKey?: string }) =>
() =>
  Effect.succeed<ProviderConfig>({
    id: provider.id ?? "cowork",
    model: provider.model,
    baseURL: provider.baseURL,
    apiKey: provider.apiKey ?? "cowork-placeholder"
  })

/**
 * The endpoint of the worker's `ModelProxy`: each session gets its own token URL (released with the session), and
 * a key that cannot be revealed is reported into the running turn as a runtime error.
 */
const proxiedEndpoint = (model: string) => (sessionId: string, context: RuntimeSessionContext) =>
  Effect.gen(function*() {
    const proxy = yield* ModelProxy.ModelProxy
    const listeners = new Set<(message: string) => void>()
    const registration = yield* proxy.register({
      sessionId,
      orgId: context.orgId ?? "",
      onRevealFailure: (_reason, message) => {
        for (const listener of listeners) listener(message)
      }
    })
    return {
      id: "cowork",
      model,
      baseURL: registration.baseUrl,
      apiKey: "cowork-proxy",
      problems: (listener: (message: string) => void) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      }
    } satisfies ProviderConfig
  })

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/

const failure = (message: string) => new RuntimeFailure({ message })
const messageOf = (error: unknown) => error instanceof Error ? error.message : String(error)

interface SessionRecord {
  readonly opencodeSessionId: string
}

export const make = (options: Options) =>
  Effect.sync(() => {
    const binary = options.binary ?? defaultBinary()
    const startTimeoutMs = options.startTimeoutMs ?? 60_000

    const open = (sessionId: string, context: RuntimeSessionContext = {}) =>
      Effect.gen(function*() {
        if (!SESSION_ID.test(sessionId)) return yield* failure("invalid session id for the opencode runtime")
        const paths = sessionPaths(path.resolve(options.root), sessionId)
        const scope = yield* Effect.scope
        const provider = yield* options.endpoint(sessionId, context)
        const lock = yield* Semaphore.make(1)
        let proc: OpenCodeProcess | undefined
        let record: SessionRecord | undefined
        let discard = false

        yield* Scope.addFinalizer(
          scope,
          Effect.promise(async () => {
            await proc?.stop()
            if (discard) await rm(paths.base, { recursive: true, force: true }).catch(() => undefined)
          })
        )

        const running = lock.withPermits(1)(Effect.gen(function*() {
          if (proc !== undefined && proc.exitReason === undefined) return proc
          if (proc !== undefined) yield* Effect.promise(() => proc!.stop())
          proc = undefined
          const started = yield* Effect.tryPromise({
            try: () =>
              OpenCodeProcess.start({
                binary,
                paths,
                provider,
                permission: options.permission,
                startTimeoutMs,
                onOutput: options.onOutput === undefined ? undefined : (line) => options.onOutput!(sessionId, line)
              }),
            catch: (error) => failure(`opencode failed to start: ${messageOf(error)}`)
          })
          proc = started
          options.onStarted?.(sessionId, { url: started.url, authorization: started.authorizationHeader })
          return started
        }))

        const opencodeSession = (server: OpenCodeProcess) =>
          Effect.gen(function*() {
            if (record !== undefined) return record.opencodeSessionId
            const stored = yield* Effect.promise(() =>
              readFile(paths.record, "utf8").then((text) => JSON.parse(text) as SessionRecord, () => undefined)
            )
            if (stored !== undefined) {
              record = stored
              return stored.opencodeSessionId
            }
            const created = yield* Effect.tryPromise({
              try: () => server.request<{ id: string }>("POST", "/session", { title: sessionId }),
              catch: (error) => failure(`opencode session create failed: ${messageOf(error)}`)
            })
            record = { opencodeSessionId: created.id }
            yield* Effect.promise(() => writeFile(paths.record, JSON.stringify(record)))
            return created.id
          })

        const prompt: RuntimeSession["prompt"] = ({ text, agent }) =>
          Stream.callback<RuntimeEvent, RuntimeFailure>((queue) =>
            Effect.gen(function*() {
              const server = yield* running
              const opencodeSessionId = yield* opencodeSession(server)
              const turn = new OpenCodeTurn(opencodeSessionId)
              yield* Effect.acquireRelease(
                Effect.sync(() => {
                  const removeEvents = server.onEvent((event) => {
                    for (const mapped of turn.accept(event)) Queue.offerUnsafe(queue, mapped)
                    if (turn.done) Queue.endUnsafe(queue)
                  })
                  const removeExit = server.onExit((reason) => {
                    if (!turn.done) Queue.failCauseUnsafe(queue, Cause.fail(failure(reason)))
                  })
                  const removeProblems = provider.problems?.((message) => {
                    if (!turn.done) Queue.offerUnsafe(queue, { _tag: "Error", message })
                  })
                  return () => {
                    removeEvents()
                    removeExit()
                    removeProblems?.()
                  }
                }),
                (remove) =>
                  Effect.gen(function*() {
                    remove()
                    // The stream ended (interrupted by an abort or a lost lease) before opencode finished: stop the turn.
                    if (!turn.done) {
                      yield* Effect.tryPromise(() =>
                        server.request("POST", `/session/${opencodeSessionId}/abort`)
                      ).pipe(Effect.timeoutOption(5_000), Effect.ignore)
                    }
                  })
              )
              yield* Effect.tryPromise({
                try: () =>
                  server.request("POST", `/session/${opencodeSessionId}/prompt_async`, {
                    parts: [{ type: "text", text }],
                    ...(agent === undefined ? {} : { agent }),
                    model: { providerID: provider.id, modelID: provider.model }
                  }),
                catch: (error) => failure(`opencode prompt failed: ${messageOf(error)}`)
              })
            })
          )

        const call = (route: string, body?: unknown) =>
          Effect.gen(function*() {
            const server = proc
            if (server === undefined || server.exitReason !== undefined) {
              return yield* failure("no running opencode turn to answer")
            }
            yield* Effect.tryPromise({
              try: () => server.request("POST", route, body),
              catch: (error) => failure(`opencode ${route.split("/")[1]} answer failed: ${messageOf(error)}`)
            })
          })

        const session: RuntimeSession = {
          prompt,
          exportState: lock.withPermits(1)(
            Effect.promise(async (): Promise<RuntimeState> => ({ files: await OpenCodeState.exportState(paths) }))
          ),
          importState: (state) =>
            lock.withPermits(1)(Effect.promise(async () => {
              // Opencode reads its database at start: stop it, replace the files, the next prompt starts it again.
              const previous = proc
              proc = undefined
              record = undefined
              await previous?.stop()
              await OpenCodeState.importState(paths, state.files)
            })),
          respondPermission: (permissionId, response) =>
            call(`/permission/${encodeURIComponent(permissionId)}/reply`, { reply: response }),
          replyQuestion: (requestId, answers) =>
            call(`/question/${encodeURIComponent(requestId)}/reply`, { answers }),
          rejectQuestion: (requestId) => call(`/question/${encodeURIComponent(requestId)}/reject`),
          discardOnClose: Effect.sync(() => {
            discard = true
          })
        }
        return session
      })

    return AgentRuntime.of({ kind: "opencode", open })
  })

export const layer = (options: Options): Layer.Layer<AgentRuntime> => Layer.effect(AgentRuntime, make(options))

/** Opencode calling the worker's `ModelProxy` (keys never reach opencode). */
export const layerProxied = (
  options: Omit<Options, "endpoint"> & { readonly model: string }
): Layer.Layer<AgentRuntime, never, ModelProxy.ModelProxy> =>
  Layer.effect(
    AgentRuntime,
    Effect.gen(function*() {
      const proxy = yield* ModelProxy.ModelProxy
      const endpoint = proxiedEndpoint(options.model)
      return yield* make({
        ...options,
        endpoint: (sessionId, context) => endpoint(sessionId, context).pipe(Effect.provideService(ModelProxy.ModelProxy, proxy))
      })
    })
  )

/**
 * Configured from the environment: `OPEN_COWORK_CLOUD_RUNTIME_ROOT` (default `<OPEN_COWORK_DATA_DIR or .cowork>/
 * runtime`), `OPEN_COWORK_CLOUD_OPENCODE_BIN`, `OPEN_COWORK_CLOUD_OPENCODE_START_TIMEOUT_MS` (60000) and the model
 * opencode asks for, `OPEN_COWORK_CLOUD_OPENCODE_MODEL` (default `gpt-4o-mini`).
 */
export const config = Config.all({
  root: Config.String("OPEN_COWORK_CLOUD_RUNTIME_ROOT").pipe(Config.option),
  dataDir: DataDir,
  binary: Config.String("OPEN_COWORK_CLOUD_OPENCODE_BIN").pipe(Config.option),
  startTimeoutMs: Config.Int("OPEN_COWORK_CLOUD_OPENCODE_START_TIMEOUT_MS").pipe(Config.withDefault(60_000)),
  model: Config.String("OPEN_COWORK_CLOUD_OPENCODE_MODEL").pipe(Config.withDefault("gpt-4o-mini"))
}).pipe(Config.map((c) => ({
  root: path.resolve(Option.getOrElse(c.root, () => path.join(c.dataDir, "runtime"))),
  binary: Option.getOrUndefined(c.binary),
  startTimeoutMs: c.startTimeoutMs,
  model: c.model
})))
