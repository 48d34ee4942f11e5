import { assert, describe, it } from "@effect/vitest"
import type { SessionEvent } from "@cowork/domain"
import { apply, emptyTimeline, fromView, type Timeline } from "../../src/timeline.ts"

let sequence = 0
const event = (type: string, payload: Record<string, unknown>): SessionEvent => ({
  sequence: ++sequence,
  type,
  eventId: `evt_${sequence}`,
  payload,
  createdAt: "2026-11-30T00:00:00.000Z"
})
const fold = (events: ReadonlyArray<SessionEvent>, from: Timeline = emptyTimeline) => events.reduce(apply, from)

describe("the session timeline fold", () => {
  it("grows the assistant message delta by delta, then takes the final text; an event seen twice changes nothing", () => {
    sequence = 0
    const events = [
      event("prompt.submitted", { commandId: "cmd_1", text: "hi" }),
      event("session.status", { status: "running", commandId: "cmd_1" }),
      event("assistant.message", { messageId: "msg_1", delta: "ec", final: false }),
      event("assistant.message", { messageId: "msg_1", delta: "ho", final: false }),
      event("tool.call", { callId: "call_1", tool: "echo", status: "completed", input: { a: 1 }, output: { b: 2 } }),
      event("assistant.message", { messageId: "msg_1", text: "echo: hi", final: true }),
      event("session.idle", { commandId: "cmd_1" })
    ]
    const partial = fold(events.slice(0, 4))
    assert.deepInclude(partial.items[1], { kind: "assistant", text: "echo", final: false })
    const done = fold(events)
    assert.deepStrictEqual(done.items.map((item) => item.kind), ["user", "assistant", "tool"])
    assert.deepInclude(done.items[1], { text: "echo: hi", final: true })
    assert.strictEqual(done.status, "idle")
    assert.strictEqual(fold(events, done), done, "a replayed event is ignored")
  })

  it("drops a retried attempt's partial output and says so; an abort is final", () => {
    sequence = 0
    const timeline = fold([
      event("session.status", { status: "running", commandId: "cmd_1" }),
      event("assistant.message", { messageId: "msg_a", delta: "half", final: false }),
      event("command.retried", { commandId: "cmd_1", abandonedAttempt: 1, attempt: 2 }),
      event("assistant.message", { messageId: "msg_b", delta: "again", final: false }),
      event("session.aborted", { commandId: "cmd_1" }),
      event("session.idle", { commandId: "cmd_1" })
    ])
    assert.deepStrictEqual(timeline.items.map((item) => item.kind === "assistant" ? item.text : item.kind), ["note", "again", "note"])
    assert.deepInclude(timeline.items[1], { final: true, incomplete: true }, "an abort leaves nothing streaming")
    assert.match((timeline.items[0] as { text: string }).text, /^Retried: attempt 2 replaces attempt 1/)
    assert.strictEqual(timeline.status, "aborted")
  })

  it("shows permission requests and questions until they are answered", () => {
    sequence = 0
    const asked = fold([
      event("permission.requested", { permissionId: "per_1", permission: "bash", patterns: ["ls"] }),
      event("question.asked", { requestId: "que_1", questions: [{ question: "Which?", options: [{ label: "A" }, { label: "B" }] }] })
    ])
    assert.deepInclude(asked.items[0], { kind: "permission", answer: undefined, patterns: ["ls"] })
    const answered = fold([
      event("permission.replied", { permissionId: "per_1", response: "once" }),
      event("question.replied", { requestId: "que_1", answers: [["B"]] })
    ], asked)
    assert.deepInclude(answered.items[0], { answer: "once" })
    assert.deepInclude(answered.items[1], { answer: "B" })
  })

  it("says when a queued prompt will not run: dead-lettered (with the operator's reason, then idle) or cancelled by an abort", () => {
    sequence = 0
    const timeline = fold([
      event("prompt.submitted", { commandId: "cmd_1", text: "poison" }),
      event("command.dead_lettered", { commandId: "cmd_1", kind: "prompt", reason: "loops forever" }),
      event("session.status", { status: "idle", commandId: "cmd_1" }),
      event("prompt.submitted", { commandId: "cmd_2", text: "later" }),
      event("command.cancelled", { commandId: "cmd_2", kind: "prompt", reason: "session aborted", abortCommandId: "cmd_3" })
    ])
    assert.deepStrictEqual(timeline.items.map((item) => item.kind === "note" ? [item.tone, item.text] : item.kind), [
      "user",
      ["abort", "Queued prompt dead-lettered by an operator, it will not run: loops forever"],
      "user",
      ["info", "Queued prompt cancelled, it will not run (session aborted)"]
    ])
    const answer = fold([event("command.dead_lettered", { commandId: "cmd_4", kind: "question_reply" })], timeline)
    assert.deepInclude(answer.items.at(-1), {
      kind: "note",
      text: "Question answer dead-lettered by an operator, it will not run; answer again while its turn waits"
    })
    const reaped = fold([
      event("command.dead_lettered", { commandId: "cmd_5", kind: "prompt", reason: "attempt 3 abandoned by worker w", cause: "attempts_exhausted", attempts: 3 }),
      event("session.idle", { outcome: "dead", commandId: "cmd_5", attempts: 3, reason: "attempt 3 abandoned by worker w" }),
      event("command.cancelled", { commandId: "cmd_6", kind: "prompt", reason: "the organization was offboarded" })
    ], timeline)
    assert.deepStrictEqual(reaped.items.slice(-2).map((item) => item.kind === "note" ? [item.tone, item.text] : item.kind), [
      ["abort", "Queued prompt dead-lettered after 3 attempts (its worker was lost each time), it will not run: attempt 3 abandoned by worker w"],
      ["info", "Queued prompt cancelled, it will not run (the organization was offboarded)"]
    ])
    assert.strictEqual(reaped.status, "idle", "the reaper's session.idle (outcome dead) still ends the turn")
    assert.strictEqual(timeline.status, "queued", "the status follows session.status / session.aborted, not these notes")
  })

  it("an ask asked again after its answer was dead-lettered is the same item, open again at its new sequence", () => {
    sequence = 0
    const ask = { permissionId: "per_1", permission: "edit", patterns: [], commandId: "cmd_1" }
    const timeline = fold([
      event("permission.requested", ask),
      event("command.dead_lettered", { commandId: "cmd_a", kind: "permission_respond", reason: "stuck", cause: "operator" }),
      event("permission.requested", { ...ask, answerLost: { commandId: "cmd_a", reason: "stuck" } })
    ])
    assert.deepStrictEqual(timeline.items.map((item) => [item.kind, item.seq]), [["permission", 3], ["note", 2]])
    assert.deepInclude(timeline.items[0], { answer: undefined, permissionId: "per_1" })
  })

  it("a snapshot reload starts from the projected view and goes on after its sequence", () => {
    const view = fromView({
      session: { id: "ses_1", orgId: "org_1", title: "", profileName: "default", status: "idle", lastSequence: 40, createdAt: "", updatedAt: "" },
      status: "idle",
      projectedSequence: 40,
      messages: [{ messageId: "cmd_9", role: "user", text: "q", commandId: "cmd_9", attempt: null, sequence: 38 }],
      nextCursor: null,
      pendingPermissions: [{ permissionId: "per_9", permission: "edit", patterns: ["a.txt"], callId: null, commandId: "cmd_9", sequence: 39 }],
      pendingQuestions: []
    })
    assert.strictEqual(view.lastSequence, 40)
    sequence = 39
    const next = fold([event("prompt.submitted", { commandId: "cmd_old", text: "old" }), event("prompt.submitted", { commandId: "cmd_10", text: "new" })], view)
    assert.deepStrictEqual(next.items.map((item) => item.kind === "permission" ? item.permissionId : (item as { text: string }).text), ["q", "per_9", "new"])
  })

  it("a snapshot reload of a long session (older messages paged out of the view) says earlier messages are not shown", () => {
    const base = {
      session: { id: "ses_1", orgId: "org_1", title: "", profileName: "default", status: "idle" as const, lastSequence: 900, createdAt: "", updatedAt: "" },
      status: "idle" as const,
      projectedSequence: 900,
      messages: [{ messageId: "cmd_99", role: "user" as const, text: "latest", commandId: "cmd_99", attempt: null, sequence: 899 }],
      pendingPermissions: [],
      pendingQuestions: []
    }
    const paged = fromView({ ...base, nextCursor: "WzgwMCwiY21kXzgwIl0" })
    assert.deepStrictEqual(paged.items.map((item) => item.kind === "note" ? [item.tone, item.text] : item.kind), [
      ["info", "Earlier messages are not shown (the session was reloaded from its newest messages)"], "user"
    ])
    assert.deepStrictEqual(fromView({ ...base, nextCursor: null }).items.map((item) => item.kind), ["user"])
  })
})
