import { RuntimeFailure } from "@cowork/domain"
import { AgentRuntime, type RuntimeEvent } from "@cowork/services"
import { Context, Deferred, Effect, Layer, Queue, Stream } from "effect"

export interface TurnStarted {
  readonly commandId: string
  readonly attempt: number
  readonly text: string
}

/**
 * A controllable agent runtime: every turn streams one delta, reports itself on `started`, then waits for its gate
 * (`release(commandId, attempt)`) before the final message. A prompt containing `[[fail]]` fails instead of
 * finishing once released; a gate that is never released is a hung turn.
 */
export class GatedRuntime extends Context.Service<GatedRuntime, {
  readonly started: Queue.Queue<TurnStarted>
  readonly release: (commandId: string, attempt: number) => Effect.Effect<void>
  readonly opened: () => ReadonlyArray<string>
  readonly runtime: AgentRuntime["Service"]
}>()("test/GatedRuntime") {
  static readonly layerState: Layer.Layer<GatedRuntime> = Layer.effect(GatedRuntime, Effect.gen(function*() {
    const started = yield* Queue.unbounded<TurnStarted>()
    const gates = new Map<string, Deferred.Deferred<void>>()
    const opened: Array<string> = []
    const gate = (commandId: string, attempt: number) => {
      const key = `${commandId}#${attempt}`
      let deferred = gates.get(key)
      if (deferred === undefined) {
        deferred = Deferred.makeUnsafe<void>()
        gates.set(key, deferred)
      }
      return deferred
    }
    const runtime = AgentRuntime.of({
      open: (sessionId) =>
        Effect.sync(() => {
          opened.push(sessionId)
          return {
            prompt: ({ commandId, text, attempt }) => {
              const messageId = `msg_${commandId}_${attempt}`
              return Stream.concat(
                Stream.make<Array<RuntimeEvent>>({ _tag: "AssistantDelta", messageId, delta: "echo" }),
                Stream.fromEffect(
                  Queue.offer(started, { commandId, attempt, text }).pipe(
                    Effect.andThen(Deferred.await(gate(commandId, attempt))),
                    Effect.andThen(text.includes("[[fail]]")
                      ? Effect.fail(new RuntimeFailure({ message: "scripted failure" }))
                      : Effect.succeed<RuntimeEvent>({ _tag: "AssistantMessage", messageId, text: `echo: ${text}` }))
                  )
                )
              )
            },
            exportState: Effect.succeed({ files: new Map() }),
            importState: () => Effect.void
          }
        })
    })
    return GatedRuntime.of({
      started,
      release: (commandId, attempt) => Deferred.succeed(gate(commandId, attempt), undefined).pipe(Effect.asVoid),
      opened: () => [...opened],
      runtime
    })
  }))

  /** `GatedRuntime` and the `AgentRuntime` it controls. */
  static readonly layer: Layer.Layer<GatedRuntime | AgentRuntime> = Layer.effect(
    AgentRuntime,
    Effect.map(Effect.service(GatedRuntime), (gated) => gated.runtime)
  ).pipe(Layer.provideMerge(GatedRuntime.layerState))
}
