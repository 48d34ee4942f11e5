import { RuntimeFailure } from "@cowork/domain"
import { ScriptedRuntime } from "@cowork/runtime"
import { AgentRuntime, type RuntimeEvent } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"

const openSession = (sessionId: string) =>
  Effect.flatMap(AgentRuntime, (runtime) => runtime.open(sessionId))

const run = (sessionId: string, commandId: string, text: string) =>
  Effect.gen(function*() {
    const session = yield* openSession(sessionId)
    return yield* Stream.runCollect(session.prompt({ commandId, text, attempt: 1 }))
  }).pipe(Effect.scoped)

const deltas = (events: ReadonlyArray<RuntimeEvent>) => events.filter((e) => e._tag === "AssistantDelta")

describe("ScriptedRuntime", () => {
  it.effect("is a pure function of the prompt: echo deltas, then the full message with a command-derived id", () =>
    Effect.gen(function*() {
      const first = yield* run("ses_a", "cmd_1", "hello world")
      const second = yield* run("ses_b", "cmd_1", "hello world")
      assert.deepStrictEqual(first, second)
      assert.strictEqual(deltas(first).length, 3)
      const last = first.at(-1)!
      assert.deepStrictEqual(last, { _tag: "AssistantMessage", messageId: "msg_cmd_1", text: "echo: hello world" })
      assert.strictEqual(deltas(first).map((e) => e._tag === "AssistantDelta" ? e.delta : "").join(""), "echo: hello world")
    }).pipe(Effect.provide(ScriptedRuntime.layer)))

  it.effect("[[events:N]] emits exactly N deltas and [[tool]] adds a tool call; directives are not echoed", () =>
    Effect.gen(function*() {
      const events = yield* run("ses_a", "cmd_2", "[[events:7]] list files [[tool]]")
      assert.strictEqual(deltas(events).length, 7)
      const tools = events.filter((e) => e._tag === "ToolCall")
      assert.strictEqual(tools.length, 1)
      assert.deepStrictEqual(events.at(-1), { _tag: "AssistantMessage", messageId: "msg_cmd_2", text: "echo: list files" })
      const none = yield* run("ses_a", "cmd_3", "[[events:0]] quiet")
      assert.deepStrictEqual(none.map((e) => e._tag), ["AssistantMessage"])
    }).pipe(Effect.provide(ScriptedRuntime.layer)))

  it.effect("[[slow:MS]] sleeps before every event on the clock (TestClock drives it)", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make(0)
      const fiber = yield* run("ses_a", "cmd_4", "[[slow:1000]] [[events:2]] hi").pipe(
        Effect.tap(() => Ref.set(seen, 1)),
        Effect.forkChild
      )
      yield* TestClock.adjust(2_999)
      assert.isUndefined(fiber.pollUnsafe(), "three events take three sleeps")
      yield* TestClock.adjust(1)
      const events = yield* Fiber.join(fiber)
      assert.strictEqual(events.length, 3)
    }).pipe(Effect.provide(ScriptedRuntime.layer)))

  it.effect("the layer's default delay applies when the prompt has no [[slow]]", () =>
    Effect.gen(function*() {
      const fiber = yield* run("ses_a", "cmd_5", "[[events:1]] hi").pipe(Effect.forkChild)
      yield* TestClock.adjust(499)
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* Fiber.join(fiber)).length, 2)
    }).pipe(Effect.provide(ScriptedRuntime.layerWith({ delayMs: 250 }))))

  it.effect("[[fail]] fails with RuntimeFailure after the first delta", () =>
    Effect.gen(function*() {
      const collected: Array<RuntimeEvent> = []
      const exit = yield* Effect.gen(function*() {
        const session = yield* openSession("ses_a")
        yield* session.prompt({ commandId: "cmd_6", text: "boom [[fail]]", attempt: 1 }).pipe(
          Stream.runForEach((event) => Effect.sync(() => collected.push(event)))
        )
      }).pipe(Effect.scoped, Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause.reasons.find((r) => r._tag === "Fail")
        assert.instanceOf(error?._tag === "Fail" ? error.error : undefined, RuntimeFailure)
      }
      assert.deepStrictEqual(collected.map((e) => e._tag), ["AssistantDelta"])
    }).pipe(Effect.provide(ScriptedRuntime.layer)))

  it.effect("[[hang]] never finishes until interrupted, and an interrupted turn leaves no transcript entry", () =>
    Effect.gen(function*() {
      const session = yield* openSession("ses_h")
      const collected = yield* Ref.make<ReadonlyArray<RuntimeEvent>>([])
      const fiber = yield* session.prompt({ commandId: "cmd_7", text: "[[hang]] wait", attempt: 1 }).pipe(
        Stream.runForEach((event) => Ref.update(collected, (all) => [...all, event])),
        Effect.forkChild
      )
      yield* TestClock.adjust("1 hour")
      assert.isUndefined(fiber.pollUnsafe())
      assert.deepStrictEqual((yield* Ref.get(collected)).map((e) => e._tag), ["AssistantDelta"])
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
      assert.isTrue(Exit.hasInterrupts(exit))
      const state = yield* session.exportState
      assert.strictEqual(state.files.size, 0)
    }).pipe(Effect.scoped, Effect.provide(ScriptedRuntime.layer)))

  it.effect("state is files: the transcript grows per prompt and export/import round-trips to another runtime", () =>
    Effect.gen(function*() {
      const exported = yield* Effect.gen(function*() {
        const session = yield* openSession("ses_s")
        yield* Stream.runDrain(session.prompt({ commandId: "cmd_a", text: "one", attempt: 1 }))
        yield* Stream.runDrain(session.prompt({ commandId: "cmd_b", text: "two", attempt: 1 }))
        return yield* session.exportState
      }).pipe(Effect.scoped, Effect.provide(ScriptedRuntime.layer))
      const transcript = new TextDecoder().decode(exported.files.get(ScriptedRuntime.TRANSCRIPT_PATH))
      assert.include(transcript, "## cmd_a")
      assert.include(transcript, "echo: two")
      assert.isBelow(transcript.indexOf("cmd_a"), transcript.indexOf("cmd_b"))

      const restored = yield* Effect.gen(function*() {
        const session = yield* openSession("ses_s")
        assert.strictEqual((yield* session.exportState).files.size, 0, "a fresh runtime starts empty")
        yield* session.importState(exported)
        yield* Stream.runDrain(session.prompt({ commandId: "cmd_c", text: "three", attempt: 1 }))
        return yield* session.exportState
      }).pipe(Effect.scoped, Effect.provide(ScriptedRuntime.layer))
      const after = new TextDecoder().decode(restored.files.get(ScriptedRuntime.TRANSCRIPT_PATH))
      assert.isTrue(after.startsWith(transcript))
      assert.include(after, "## cmd_c")
    }))

  it.effect("a retried turn asks with new ids (as opencode does): an answer meant for the earlier attempt does not answer it", () =>
    Effect.gen(function*() {
      const session = yield* openSession("ses_retry")
      const askOf = (attempt: number, text: string) =>
        Effect.gen(function*() {
          const first = yield* Deferred.make<RuntimeEvent>()
          const fiber = yield* session.prompt({ commandId: "cmd_r", text, attempt }).pipe(
            Stream.runForEach((event) => Deferred.succeed(first, event)),
            Effect.forkChild
          )
          return { ask: yield* Deferred.await(first), fiber }
        })
      const permissionIdOf = (event: RuntimeEvent) => event._tag === "PermissionRequested" ? event.permissionId : assert.fail(event._tag)
      const requestIdOf = (event: RuntimeEvent) => event._tag === "QuestionAsked" ? event.requestId : assert.fail(event._tag)

      // Attempt 1 asks, and its worker dies before the answer arrives: the turn is retried as attempt 2.
      const killed = yield* askOf(1, "edit [[permission]]")
      yield* Fiber.interrupt(killed.fiber)
      const retried = yield* askOf(2, "edit [[permission]]")
      const earlierId = permissionIdOf(killed.ask)
      const retriedId = permissionIdOf(retried.ask)
      assert.notStrictEqual(retriedId, earlierId)
      const stale = yield* Effect.flip(session.respondPermission!(earlierId, "once"))
      assert.instanceOf(stale, RuntimeFailure)
      assert.isUndefined(retried.fiber.pollUnsafe(), "the answer meant for attempt 1 did not answer attempt 2")
      yield* session.respondPermission!(retriedId, "once")
      yield* Fiber.join(retried.fiber)

      const question1 = yield* askOf(1, "ok? [[question]]")
      yield* Fiber.interrupt(question1.fiber)
      const question2 = yield* askOf(2, "ok? [[question]]")
      assert.notStrictEqual(requestIdOf(question2.ask), requestIdOf(question1.ask))
      assert.instanceOf(yield* Effect.flip(session.rejectQuestion!(requestIdOf(question1.ask))), RuntimeFailure)
      yield* session.replyQuestion!(requestIdOf(question2.ask), [["yes"]])
      yield* Fiber.join(question2.fiber)
    }).pipe(Effect.scoped, Effect.provide(ScriptedRuntime.layer)))
})
