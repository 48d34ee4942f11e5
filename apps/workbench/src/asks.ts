import { ApiFailure, currentCsrfToken } from "./api.ts"

/**
 * Answers to a running turn's permission requests and questions (`/api/sessions/:id/permission-respond`,
 * `question-reply`, `question-reject`): 202 with the answering command; the turn shows the answer once the worker
 * has delivered it (`permission.replied`, `question.replied`, `question.rejected`).
 */
const send = async (sessionId: string, action: string, body: unknown) => {
  const headers: Record<string, string> = { "content-type": "application/json" }
  const token = currentCsrfToken()
  if (token !== undefined) headers["x-csrf-token"] = token
  const response = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}/${action}`, {
    method: "POST",
    headers,
    credentials: "same-origin",
    body: JSON.stringify(body)
  })
  if (!response.ok) {
    const parsed = await response.json().catch(() => undefined) as { error?: { code?: string; message?: string } } | undefined
    throw new ApiFailure(response.status, parsed?.error?.code ?? "error", parsed?.error?.message ?? `request failed with ${response.status}`)
  }
}

export const respondPermission = (sessionId: string, permissionId: string, response: "once" | "always" | "reject") =>
  send(sessionId, "permission-respond", { permissionId, response })

export const replyQuestion = (sessionId: string, requestId: string, answers: ReadonlyArray<ReadonlyArray<string>>) =>
  send(sessionId, "question-reply", { requestId, answers })

export const rejectQuestion = (sessionId: string, requestId: string) => send(sessionId, "question-reject", { requestId })
