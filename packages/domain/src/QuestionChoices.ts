import type { AskAnswer } from "./Command.ts"
import type { PendingQuestion } from "./Session.ts"

/** Most questions one set of chat choices answers (one option index per question). */
export const MAX_CHOICE_QUESTIONS = 20
/** Option indexes a chat button can carry (one base-36 character each). */
export const MAX_CHOICE_OPTIONS = 36

const str = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

/** The questions of an opencode `question.asked` payload (`questions: [{question, header?, options:[{label}]}]`). */
export const askedQuestions = (questions: unknown): ReadonlyArray<unknown> => (Array.isArray(questions) ? questions : [])

/** The option labels of one asked question (`options: [{label}]`, or plain strings), in order. */
export const questionOptionLabels = (question: unknown): ReadonlyArray<string> => {
  const options = (question as { options?: unknown } | null)?.options
  return Array.isArray(options)
    ? options.map((option) => str((option as { label?: unknown } | null)?.label) ?? str(option)).filter((label): label is string => label !== undefined)
    : []
}

/**
 * A chat's button choices (one option index per question, in the order asked) as the `question_reply` the question
 * expects: each index resolved to its option label against the pending question, so a button carries a short index
 * rather than a label (Telegram's `callback_data` holds 64 bytes). `field`-named refusals: a choice list that does not
 * cover every question, or an index past a question's options.
 */
export const choiceAnswer = (
  question: Pick<PendingQuestion, "requestId" | "questions">,
  choices: ReadonlyArray<number>
): { readonly _tag: "Answer"; readonly answer: AskAnswer } | { readonly _tag: "Invalid"; readonly message: string } => {
  const asked = askedQuestions(question.questions)
  if (choices.length !== Math.max(1, asked.length)) {
    return { _tag: "Invalid", message: `\`choices\` must give one option index per question (${Math.max(1, asked.length)})` }
  }
  const answers: Array<ReadonlyArray<string>> = []
  for (const [index, choice] of choices.entries()) {
    const label = questionOptionLabels(asked[index])[choice]
    if (label === undefined) return { _tag: "Invalid", message: `\`choices\` ${index}: question ${index + 1} has no option ${choice}` }
    answers.push([label])
  }
  return { _tag: "Answer", answer: { kind: "question_reply", requestId: question.requestId, answers } }
}

/**
 * Why a `question_reply`'s answers do not fit the pending question, or undefined when they do: one list of answers per
 * question asked, in order (an ask whose questions are not a list is not counted). opencode takes the lists by position,
 * so a short or long list would answer the wrong questions or leave some unanswered.
 */
export const answerCountProblem = (question: Pick<PendingQuestion, "questions">, answers: ReadonlyArray<unknown>): string | undefined => {
  const asked = askedQuestions(question.questions).length
  return asked > 0 && answers.length !== asked
    ? `\`answers\` must give one list per question asked (${asked}), in order; got ${answers.length}`
    : undefined
}
