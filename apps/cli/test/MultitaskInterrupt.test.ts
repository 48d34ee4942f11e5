import { MemoryDatabase } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { memoryStack, orgClient, startWorker } from "../../../test/support/MemoryStack.ts"
import { connect, eventData } from "../../../test/support/SseClient.ts"

/**
 * `multitaskStrategy: interrupt` end to end on the memory stack: the running turn stops (its output so far kept as a
 * final message marked `interrupted`, `session.status` interrupted, `session.idle` outcome interrupted), every queued
 * prompt still runs in order, and each command completes exactly once.
 */
it.layer(memoryStack("interrupt"), { timeout: 60_000 })("multitaskStrategy interrupt", (it) => {
  it.effect("stops the running turn, keeps its output, and runs every queued prompt once, in order", () =>
    Effect.gen(function*() {
      const { token, url, api } = yield* orgClient("interrupt org")
      const { session } = yield* api.sessions.create({ payload: { title: "interrupt" } })
      const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      const scope = yield* startWorker("worker-interrupt")

      const long = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "a long answer [[hang]]" } })
      yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "assistant.message"), 15_000)
      const queued = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "queued before", multitaskStrategy: "enqueue" } })
      const urgent = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "stop and do this", multitaskStrategy: "interrupt" } })
      const frames = yield* stream.waitFor((f) => eventData(f).filter((e) => e.type === "session.idle").length === 3, 15_000)
      const events = eventData(frames)
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), "contiguous, no gap, no duplicate")

      const idles = events.filter((e) => e.type === "session.idle").map((e) => e.payload as { commandId: string; outcome: string; interruptedBy?: string })
      assert.deepStrictEqual(idles, [
        { commandId: long.commandId, outcome: "interrupted", interruptedBy: urgent.commandId },
        { commandId: queued.commandId, outcome: "acked" },
        { commandId: urgent.commandId, outcome: "acked" }
      ], "one end per command, the queued prompt keeps its place")
      const status = events.find((e) => e.type === "session.status" && (e.payload as { status: string }).status === "interrupted")!
      assert.deepInclude(status.payload as object, { commandId: long.commandId, interruptedBy: urgent.commandId })

      const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.strictEqual(view.status, "idle")
      const answers = view.messages.filter((m) => m.role === "assistant")
      assert.deepStrictEqual(answers.map((m) => m.commandId), [long.commandId, queued.commandId, urgent.commandId])
      assert.isTrue("echo: a long answer".startsWith(answers[0]!.text) && answers[0]!.text.length > 0, "the interrupted turn's text so far is kept")
      assert.deepStrictEqual(answers.slice(1).map((m) => m.text), ["echo: queued before", "echo: stop and do this"])

      const db = yield* MemoryDatabase
      const statuses = [long, queued, urgent].map((c) => db.commands.find((row) => row.id === c.commandId)!.status)
      assert.deepStrictEqual(statuses, ["cancelled", "acked", "acked"])

      // With nothing running, interrupt is just a prompt.
      const calm = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "calm", multitaskStrategy: "interrupt" } })
      yield* stream.waitFor((f) => eventData(f).filter((e) => e.type === "session.idle").length === 4, 15_000)
      assert.strictEqual(db.commands.find((row) => row.id === calm.commandId)!.status, "acked")
      yield* Scope.close(scope, Exit.void)
      yield* stream.close
    }))
})
