import { answerData, answerSummary, completes, parseAnswerData, reselect, SELECTED_MARK, unchosen } from "@cowork/channels"
import { assert, describe, it } from "@effect/vitest"

const REQUEST = "que_cmd_0mimo5w3k0123456789abcdef_1"

describe("answer buttons (the data a pressed button carries back)", () => {
  it("encodes values and picks within Telegram's 64 bytes, and reads them back", () => {
    assert.strictEqual(answerData({ label: "Allow once", requestId: "per_1", value: "once" }), "answer:per_1:once")
    const pick = answerData({ label: "blue", requestId: REQUEST, choice: { question: 1, option: 1, questions: 3 } })!
    assert.strictEqual(pick, `pick:${REQUEST}:1:-1-`)
    assert.isAtMost(Buffer.byteLength(pick), 64)
    assert.deepStrictEqual(parseAnswerData(pick), { requestId: REQUEST, question: 1, choices: [undefined, 1, undefined] })
    assert.deepStrictEqual(parseAnswerData("answer:per_1:once"), { requestId: "per_1", value: "once" })
    // Twenty questions with a 30-character opencode id still fit; a long id does not (the button is left out).
    assert.isDefined(answerData({ label: "x", requestId: "que_0123456789abcdefghijklmnop", choice: { question: 19, option: 35, questions: 20 } }))
    assert.isUndefined(answerData({ label: "x", requestId: "q".repeat(60), choice: { question: 0, option: 0, questions: 1 } }))
  })

  it("refuses data it did not make: unknown prefixes, a pick whose own question is unchosen, out-of-range questions", () => {
    for (const data of ["something else", "pick:que_1:0:-", "pick:que_1:2:00", "pick:que_1:0:", "pick:que:1:0:0", 42, undefined, `pick:que_1:0:${"0".repeat(21)}`]) {
      assert.isUndefined(parseAnswerData(data), String(data))
    }
  })

  it("a pick completes its ask only when every question has an option", () => {
    assert.isTrue(completes({ requestId: "per_1", value: "once" }))
    assert.isTrue(completes(parseAnswerData(`pick:${REQUEST}:0:1`)!))
    const partial = parseAnswerData(`pick:${REQUEST}:0:1-`)!
    assert.isFalse(completes(partial))
    assert.strictEqual(unchosen(partial), 1)
  })

  it("re-renders a pressed keyboard with the selection so far, and summarises a completed one by its labels", () => {
    const data = (question: number, option: number) => answerData({ label: "", requestId: REQUEST, choice: { question, option, questions: 2 } })!
    const rows = [
      [{ label: "1: yes", data: data(0, 0) }, { label: "1: no", data: data(0, 1) }],
      [{ label: "2: red", data: data(1, 0) }, { label: "2: blue", data: data(1, 1) }],
      [{ label: "Reject", data: `answer:${REQUEST}:reject` }]
    ]
    const first = parseAnswerData(data(0, 1))!
    const after = reselect(rows, first)
    assert.deepStrictEqual(after.map((row) => row.map((b) => b.label)), [["1: yes", `${SELECTED_MARK}1: no`], ["2: red", "2: blue"], ["Reject"]])
    assert.deepStrictEqual(after.map((row) => row.map((b) => b.data.split(":").at(-1))), [["0-", "1-"], ["10", "11"], ["reject"]])
    // Changing one's mind moves the mark; the press on the second row completes the set.
    const changed = reselect(after, parseAnswerData(after[0]![0]!.data)!)
    assert.deepStrictEqual(changed[0]!.map((b) => b.label), [`${SELECTED_MARK}1: yes`, "1: no"])
    const done = parseAnswerData(after[1]![1]!.data)!
    assert.deepStrictEqual(done, { requestId: REQUEST, question: 1, choices: [1, 1] })
    assert.isTrue(completes(done))
    assert.strictEqual(answerSummary(after, done), "1: no, 2: blue")
    assert.strictEqual(answerSummary(undefined, { requestId: "per_1", value: "once" }), "once")
    // A button of another request is left alone.
    const foreign = [[{ label: "other", data: `pick:que_other:0:0-` }]]
    assert.deepStrictEqual(reselect(foreign, first), foreign)
  })
})
