import { OpenCodeTurn } from "@cowork/runtime"
import { assert, describe, it } from "@effect/vitest"

/** Opencode's events for one session, as seen on this machine (opencode 1.18.33), mapped to runtime events. */

const S = "ses_oc"
const ev = (type: string, properties: Record<string, unknown>) => ({ id: `evt_${Math.random()}`, type, properties }) as any

describe("OpenCodeTurn", () => {
  it("maps a tool step then a text step: tool running/completed, usage, deltas of assistant text only, one final per message, idle ends", () => {
    const turn = new OpenCodeTurn(S)
    const out = [
      ev("message.updated", { sessionID: S, info: { id: "msg_user", role: "user", sessionID: S } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_u", messageID: "msg_user", sessionID: S, type: "text", text: "hello [[write:a]]" } }),
      ev("session.status", { sessionID: S, status: { type: "busy" } }),
      ev("message.updated", { sessionID: S, info: { id: "msg_a1", role: "assistant", sessionID: S, time: {} } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_t", messageID: "msg_a1", sessionID: S, type: "tool", tool: "write", callID: "call_1", state: { status: "pending", input: {} } } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_t", messageID: "msg_a1", sessionID: S, type: "tool", tool: "write", callID: "call_1", state: { status: "running", input: { filePath: "a" } } } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_t", messageID: "msg_a1", sessionID: S, type: "tool", tool: "write", callID: "call_1", state: { status: "running", input: { filePath: "a" } } } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_t", messageID: "msg_a1", sessionID: S, type: "tool", tool: "write", callID: "call_1", state: { status: "completed", input: { filePath: "a" }, output: "Wrote file successfully." } } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_f", messageID: "msg_a1", sessionID: S, type: "step-finish", tokens: { input: 2400, output: 10, reasoning: 0, cache: { read: 1, write: 2 } } } }),
      ev("message.updated", { sessionID: S, info: { id: "msg_a1", role: "assistant", sessionID: S, time: { completed: 1 } } }),
      ev("message.updated", { sessionID: S, info: { id: "msg_a2", role: "assistant", sessionID: S, time: {} } }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_x", messageID: "msg_a2", sessionID: S, type: "text", text: "" } }),
      ev("message.part.delta", { sessionID: S, messageID: "msg_a2", partID: "prt_x", field: "text", delta: "wrote " }),
      ev("message.part.delta", { sessionID: S, messageID: "msg_user", partID: "prt_u", field: "text", delta: "not ours" }),
      ev("message.part.delta", { sessionID: "ses_other", messageID: "msg_a2", partID: "prt_x", field: "text", delta: "other session" }),
      ev("message.part.delta", { sessionID: S, messageID: "msg_a2", partID: "prt_x", field: "text", delta: "a" }),
      ev("message.part.updated", { sessionID: S, part: { id: "prt_x", messageID: "msg_a2", sessionID: S, type: "text", text: "wrote a" } }),
      ev("message.updated", { sessionID: S, info: { id: "msg_a2", role: "assistant", sessionID: S, time: { completed: 2 } } }),
      ev("message.updated", { sessionID: S, info: { id: "msg_a2", role: "assistant", sessionID: S, time: { completed: 2 } } }),
      ev("session.status", { sessionID: S, status: { type: "idle" } }),
      ev("session.idle", { sessionID: S }),
      ev("message.part.delta", { sessionID: S, messageID: "msg_a2", partID: "prt_x", field: "text", delta: "after the end" })
    ].flatMap((event) => turn.accept(event))
    assert.deepStrictEqual(out, [
      { _tag: "ToolCall", callId: "call_1", tool: "write", input: { filePath: "a" }, status: "running" },
      { _tag: "ToolCall", callId: "call_1", tool: "write", input: { filePath: "a" }, status: "completed", output: "Wrote file successfully." },
      { _tag: "Usage", messageId: "msg_a1", usage: { input: 2400, output: 10, reasoning: 0, cacheRead: 1, cacheWrite: 2 } },
      { _tag: "AssistantDelta", messageId: "msg_a2", delta: "wrote " },
      { _tag: "AssistantDelta", messageId: "msg_a2", delta: "a" },
      { _tag: "AssistantMessage", messageId: "msg_a2", text: "wrote a" }
    ])
    assert.isTrue(turn.done)
  })

  it("an idle before the turn went busy does not end it; permission and question asks map; an abort is not an error", () => {
    const turn = new OpenCodeTurn(S)
    assert.deepStrictEqual(turn.accept(ev("session.idle", { sessionID: S })), [])
    assert.isFalse(turn.done)
    turn.accept(ev("session.status", { sessionID: S, status: { type: "busy" } }))
    assert.deepStrictEqual(
      turn.accept(ev("permission.asked", { id: "per_1", sessionID: S, permission: "edit", patterns: ["a.txt"], always: [], metadata: {}, tool: { messageID: "m", callID: "call_2" } })),
      [{ _tag: "PermissionRequested", permissionId: "per_1", permission: "edit", patterns: ["a.txt"], callId: "call_2" }]
    )
    assert.deepStrictEqual(
      turn.accept(ev("question.asked", { id: "que_1", sessionID: S, questions: [{ question: "which?", options: [] }] })),
      [{ _tag: "QuestionAsked", requestId: "que_1", questions: [{ question: "which?", options: [] }] }]
    )
    assert.deepStrictEqual(
      turn.accept(ev("session.status", { sessionID: S, status: { type: "retry", message: "rate limited" } })),
      [{ _tag: "Status", status: "retry", detail: "rate limited" }]
    )
    assert.deepStrictEqual(turn.accept(ev("session.error", { sessionID: S, error: { name: "MessageAbortedError", data: {} } })), [])
    assert.deepStrictEqual(
      turn.accept(ev("session.error", { sessionID: S, error: { name: "APIError", data: { message: "bad gateway" } } })),
      [{ _tag: "Error", message: "APIError: bad gateway" }]
    )
  })
})
