import { chatTextAnswer, choiceAnswer } from "@cowork/domain"
import { assert, describe, it } from "@effect/vitest"

const question = (count: number) => ({
  requestId: "que_1",
  questions: Array.from({ length: count }, (_, i) => ({ question: `q${i}`, options: [{ label: `yes${i}` }, { label: `no${i}` }] }))
})
const pending = (count: number) => ({ pendingPermissions: [], pendingQuestions: [{ ...question(count), commandId: null, sequence: 1 }] })

describe("chat answers to a session's question", () => {
  it("a reply answers every question with its text, or each with its line when it has one line per question", () => {
    assert.deepStrictEqual(chatTextAnswer(pending(1), "  sure  "), { kind: "question_reply", requestId: "que_1", answers: [["sure"]] })
    assert.deepStrictEqual(chatTextAnswer(pending(2), "no\n\n blue \n"), { kind: "question_reply", requestId: "que_1", answers: [["no"], ["blue"]] })
    assert.deepStrictEqual(chatTextAnswer(pending(2), "one line"), { kind: "question_reply", requestId: "que_1", answers: [["one line"], ["one line"]] })
    assert.deepStrictEqual(chatTextAnswer(pending(2), "a\nb\nc"), { kind: "question_reply", requestId: "que_1", answers: [["a\nb\nc"], ["a\nb\nc"]] })
    assert.isUndefined(chatTextAnswer(pending(2), "  \n "))
  })

  it("button choices resolve to the question's option labels, one per question, or are refused naming choices", () => {
    assert.deepStrictEqual(choiceAnswer(question(2), [1, 0]), { _tag: "Answer", answer: { kind: "question_reply", requestId: "que_1", answers: [["no0"], ["yes1"]] } })
    for (const choices of [[0], [0, 0, 0], [0, 2], []]) {
      const refused = choiceAnswer(question(2), choices)
      assert.strictEqual(refused._tag, "Invalid", JSON.stringify(choices))
      if (refused._tag === "Invalid") assert.include(refused.message, "`choices`")
    }
    // A question without a questions list is one question; options as plain strings are labels too.
    assert.deepStrictEqual(choiceAnswer({ requestId: "q", questions: [{ options: ["a", "b"] }] }, [1]), { _tag: "Answer", answer: { kind: "question_reply", requestId: "q", answers: [["b"]] } })
    assert.strictEqual(choiceAnswer({ requestId: "q", questions: null }, [0])._tag, "Invalid")
  })
})
