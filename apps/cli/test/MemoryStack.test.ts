import { makeFetch } from "@cowork/client"
import { ScriptedRuntime } from "@cowork/runtime"
import { MemoryDatabase, Tokens } from "@cowork/services"
import { CheckpointStore } from "@cowork/storage"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import { eventually } from "../../../test/support/Eventually.ts"
import { baseUrl, memoryStack, startWorker } from "../../../test/support/MemoryStack.ts"
import { connect, eventData } from "../../../test/support/SseClient.ts"

/**
 * The web and worker roles on memory layers only (no Postgres, no object-store directory), under the `TestClock`:
 * the same role layers `cowork up` runs, over `layerMemoryControlPlane`, a memory object store and secret adapter.
 */
it.layer(memoryStack("memory-stack"), { timeout: 60_000 })("web + worker on memory layers", (it) => {
  it.effect("one prompt: 202, the worker runs it, and the session's SSE stream carries it end to end; a second worker restores the checkpoint", () =>
    Effect.gen(function*() {
      const { owner } = yield* (yield* Tokens).bootstrap("memory org")
      const token = Redacted.value(owner!.token)
      const url = yield* baseUrl
      const api = yield* makeFetch({ baseUrl: url, token })
      const { session } = yield* api.sessions.create({ payload: { title: "memory" } })
      const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      assert.strictEqual(stream.status, 200)

      const first = yield* startWorker("worker-memory-1")
      const { commandId } = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "hello" } })
      const frames = yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "session.idle"), 15_000)
      const events = eventData(frames)
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), "contiguous, no gap, no duplicate")
      assert.deepStrictEqual(events.map((e) => e.type).filter((t) => t !== "assistant.message"), [
        "session.created", "prompt.submitted", "session.status", "session.idle"
      ])
      assert.isTrue(events.some((e) => e.type === "assistant.message" && (e.payload as { final?: boolean }).final === true))
      const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.strictEqual(view.status, "idle")
      assert.deepStrictEqual(view.messages.map((m) => m.role), ["user", "assistant"])
      assert.strictEqual(view.messages[0]!.messageId, commandId)

      // The ack saved a checkpoint and moved the lease's version with it; a fresh worker restores it.
      const db = yield* MemoryDatabase
      const saved = db.leases.get(session.id)!.checkpointVersion
      assert.isAbove(saved, 0, "the ack advanced checkpointVersion")
      yield* Scope.close(first, Exit.void)
      const second = yield* startWorker("worker-memory-2")
      const next = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "again" } })
      yield* eventually(
        Effect.sync(() => db.commands.find((c) => c.id === next.commandId)?.status === "acked"),
        "the second prompt acked"
      )
      const restored = db.leases.get(session.id)!
      assert.isAbove(restored.checkpointVersion, saved)
      const state = yield* (yield* CheckpointStore).load(session.orgId, session.id, restored.checkpointVersion)
      const transcript = new TextDecoder().decode(state.files.get(ScriptedRuntime.TRANSCRIPT_PATH)!)
      assert.deepStrictEqual([...transcript.matchAll(/^## (\S+)$/gm)].map((m) => m[1]), [commandId, next.commandId],
        "the second worker started from the first worker's checkpoint")
      yield* Scope.close(second, Exit.void)
      yield* stream.close
    }))
})
