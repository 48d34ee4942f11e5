/**
 * Answer buttons on a session's question or permission request, and what a pressed one carries back. The data is
 * all the gateway keeps (no state of its own, any replica takes any press), and within Telegram's 64 bytes:
 *
 * - `answer:<requestId>:<value>`: a permission's once / always / reject, or a question's reject.
 * - `pick:<requestId>:<q>:<choices>`: one option of question `q` (base 36) of an ask with several questions or one.
 *   `<choices>` is the selection this press makes, one character per question: the option index in base 36, or `-`
 *   for a question not chosen yet. A press that leaves a question unchosen is shown on the message (every button's
 *   data rewritten to carry the selection so far); the press that completes it answers every question at once. The
 *   cloud resolves the indexes to the pending question's option labels, and only on the session the press's thread
 *   routes to: another session's request id in forged data is not pending there.
 */

/** Selected buttons show this before their label. */
export const SELECTED_MARK = "✓ "
const UNSET = "-"

export interface AnswerButton {
  readonly label: string
  readonly requestId: string
  /** `once` / `always` / `reject` (a permission), `reject` (a question). */
  readonly value?: string | undefined
  /** One option of one question of an ask with `questions` questions. */
  readonly choice?: { readonly question: number; readonly option: number; readonly questions: number } | undefined
  /** The keyboard row (Telegram) / actions block (Slack): one per question, the reject button on its own. */
  readonly row?: number | undefined
}

/** A button as a pressed message shows it (its label and data), for re-rendering a partial selection. */
export interface ButtonView {
  readonly label: string
  readonly data: string
}

/** What a pressed button's data says: a value answer, or a pick with the selection it makes. */
export type PressedAnswer =
  | { readonly requestId: string; readonly value: string }
  | { readonly requestId: string; readonly question: number; readonly choices: ReadonlyArray<number | undefined> }

const encodeChoices = (choices: ReadonlyArray<number | undefined>): string =>
  choices.map((choice) => (choice === undefined ? UNSET : choice.toString(36))).join("")

const pickData = (requestId: string, question: number, choices: ReadonlyArray<number | undefined>): string =>
  `pick:${requestId}:${question.toString(36)}:${encodeChoices(choices)}`

/** A button's data within `maxBytes` (Telegram allows 64, Slack 2,000); undefined (the button is left out) when it does not fit. */
export const answerData = (button: AnswerButton, maxBytes = 64): string | undefined => {
  const { choice } = button
  const data = choice === undefined
    ? `answer:${button.requestId}:${button.value ?? ""}`
    : pickData(button.requestId, choice.question, Array.from({ length: choice.questions }, (_, q) => (q === choice.question ? choice.option : undefined)))
  return Buffer.byteLength(data, "utf8") <= maxBytes ? data : undefined
}

/** The answer a pressed button's data carries, or undefined for data the gateway did not make. */
export const parseAnswerData = (data: unknown): PressedAnswer | undefined => {
  if (typeof data !== "string") return undefined
  const pick = /^pick:([^:]{1,200}):([0-9a-z]):([0-9a-z-]{1,20})$/.exec(data)
  if (pick !== null) {
    const question = parseInt(pick[2]!, 36)
    const choices = [...pick[3]!].map((c) => (c === UNSET ? undefined : parseInt(c, 36)))
    if (question >= choices.length || choices[question] === undefined) return undefined
    return { requestId: pick[1]!, question, choices }
  }
  const match = /^answer:([^:]{1,200}):(.{1,200})$/.exec(data)
  return match === null ? undefined : { requestId: match[1]!, value: match[2]! }
}

/** True when the press answers its ask: a value, or a pick that leaves no question unchosen. */
export const completes = (answer: PressedAnswer): boolean => !("choices" in answer) || answer.choices.every((c) => c !== undefined)

const bare = (label: string): string => (label.startsWith(SELECTED_MARK) ? label.slice(SELECTED_MARK.length) : label)

/**
 * The pressed message's buttons after a pick: every pick button of the same request carries the new selection (with
 * its own option in its question), and the chosen ones are marked. Other buttons stay as they are.
 */
export const reselect = (rows: ReadonlyArray<ReadonlyArray<ButtonView>>, answer: PressedAnswer): ReadonlyArray<ReadonlyArray<ButtonView>> => {
  if (!("choices" in answer)) return rows
  return rows.map((row) =>
    row.map((button) => {
      const own = parseAnswerData(button.data)
      if (own === undefined || !("choices" in own) || own.requestId !== answer.requestId || own.choices.length !== answer.choices.length) return button
      const option = own.choices[own.question]
      const choices = answer.choices.map((choice, q) => (q === own.question ? option : choice))
      const chosen = answer.choices[own.question] === option
      return { label: `${chosen ? SELECTED_MARK : ""}${bare(button.label)}`, data: pickData(answer.requestId, own.question, choices) }
    })
  )
}

/** What the press answered, for the message that shows it: the value, or the chosen buttons' labels in question order. */
export const answerSummary = (rows: ReadonlyArray<ReadonlyArray<ButtonView>> | undefined, answer: PressedAnswer): string => {
  if (!("choices" in answer)) return answer.value
  const labels = answer.choices.map((choice, question) => {
    const button = (rows ?? []).flat().find((candidate) => {
      const own = parseAnswerData(candidate.data)
      return own !== undefined && "choices" in own && own.requestId === answer.requestId && own.question === question && own.choices[question] === choice
    })
    return button === undefined ? `option ${(choice ?? 0) + 1}` : bare(button.label)
  })
  return labels.join(", ")
}

/** Questions a pick leaves unchosen. */
export const unchosen = (answer: PressedAnswer): number => ("choices" in answer ? answer.choices.filter((c) => c === undefined).length : 0)
