import { commandCancelledEvent, commandDeadLetteredEvent, deliveryDrafts, parseApiToken, projectEvents, settledIdleEvent } from "@cowork/domain"
import { assert, describe, it } from "@effect/vitest"

describe("projectEvents", () => {
  it("turns a prompt turn into one user and one assistant message, ignoring deltas", () => {
    const delta = projectEvents([
      { type: "prompt.submitted", payload: { commandId: "cmd_1", text: "hi" } },
      { type: "session.status", payload: { status: "running" } },
      { type: "assistant.message", payload: { messageId: "m1", delta: "he", final: false }, commandId: "cmd_1", attempt: 1 },
      { type: "assistant.message", payload: { messageId: "m1", text: "hello", final: true }, commandId: "cmd_1", attempt: 1 },
      { type: "session.idle", payload: { commandId: "cmd_1" } }
    ])
    assert.strictEqual(delta.status, "idle")
    assert.deepStrictEqual(delta.messages.map((m) => [m.role, m.messageId, m.text, m.draftIndex]), [
      ["user", "cmd_1", "hi", 0],
      ["assistant", "m1", "hello", 3]
    ])
    assert.deepStrictEqual(delta.dropAttempts, [])
  })

  it("names the abandoned attempt of a retried command so its output is dropped", () => {
    const delta = projectEvents([
      { type: "command.retried", payload: { commandId: "cmd_1", abandonedAttempt: 1, attempt: 2 } }
    ])
    assert.deepStrictEqual(delta.dropAttempts, [{ commandId: "cmd_1", attempt: 1 }])
    assert.isUndefined(delta.status)
  })

  it("a dead-lettered or cancelled command changes no status by itself and is not delivered to chat channels", () => {
    const drafts = [
      commandDeadLetteredEvent({ commandId: "cmd_1", kind: "prompt", reason: "ops", cause: "operator" }),
      commandCancelledEvent({ commandId: "cmd_2", kind: "prompt" }, { abortCommandId: "cmd_3" }),
      commandCancelledEvent({ commandId: "cmd_4", kind: "prompt" }, { offboarded: true })
    ]
    const delta = projectEvents(drafts)
    assert.isUndefined(delta.status)
    assert.deepStrictEqual([delta.messages, delta.dropAttempts, delta.asksClosedForCommands], [[], [], []])
    assert.deepStrictEqual(deliveryDrafts(drafts), [])
    assert.strictEqual(projectEvents([...drafts, settledIdleEvent("cmd_1")]).status, "idle")
  })

  it("opens asks and closes them when answered, when their turn ends or is retried, and on abort (net effect, in order)", () => {
    const asked = projectEvents([
      { type: "permission.requested", payload: { permissionId: "per_1", permission: "edit" }, commandId: "cmd_1", attempt: 1 },
      { type: "question.asked", payload: { requestId: "que_1", questions: [] }, commandId: "cmd_1", attempt: 1 },
      { type: "permission.replied", payload: { permissionId: "per_1", response: "once" }, commandId: "cmd_a" }
    ])
    assert.deepStrictEqual(asked.asksOpened.map((a) => [a.ask, a.askId, a.commandId, a.draftIndex]), [["question", "que_1", "cmd_1", 1]])
    assert.deepStrictEqual(asked.asksClosed, [{ ask: "permission", askId: "per_1" }])
    const ended = projectEvents([
      { type: "question.asked", payload: { requestId: "que_2", questions: [] }, commandId: "cmd_2", attempt: 1 },
      { type: "session.idle", payload: { commandId: "cmd_1" }, commandId: "cmd_1", attempt: 1 }
    ])
    assert.deepStrictEqual(ended.asksOpened.map((a) => a.askId), ["que_2"], "another turn's ask stays")
    assert.deepStrictEqual(ended.asksClosedForCommands, ["cmd_1"])
    const retried = projectEvents([
      { type: "command.retried", payload: { commandId: "cmd_1", abandonedAttempt: 1, attempt: 2 } },
      { type: "permission.requested", payload: { permissionId: "per_1", permission: "edit" }, commandId: "cmd_1", attempt: 2 }
    ])
    assert.deepStrictEqual([retried.asksClosedForCommands, retried.asksOpened.map((a) => a.askId)], [["cmd_1"], ["per_1"]])
    const aborted = projectEvents([
      { type: "permission.requested", payload: { permissionId: "per_3", permission: "bash" }, commandId: "cmd_3", attempt: 1 },
      { type: "session.aborted", payload: { commandId: "cmd_x" } }
    ])
    assert.deepStrictEqual([aborted.asksOpened, aborted.asksClearedAll], [[], true])
  })

  it("never costs more than one message row per event", () => {
    const drafts = Array.from({ length: 500 }, (_, i) => ({
      type: "assistant.message" as const,
      payload: { messageId: `m${i}`, text: "x", final: i % 2 === 0 }
    }))
    assert.strictEqual(projectEvents(drafts).messages.length, 250)
  })
})

describe("parseApiToken", () => {
  it("accepts only occ_<id>_<secret>", () => {
    assert.deepStrictEqual(parseApiToken("occ_abcdef12_0123456789abcdefghijXYZ"), {
      tokenId: "abcdef12",
      secret: "0123456789abcdefghijXYZ"
    })
    for (const bad of ["", "occ_", "ocw_abcdef12_0123456789abcdefghijXYZ", "occ_abc_0123456789abcdefghij", "Bearer occ_abcdef12_0123456789abcdefghijXYZ"]) {
      assert.isUndefined(parseApiToken(bad), bad)
    }
  })
})
