import type { ErrorBody } from "@cowork/domain"
import { HttpServerResponse } from "effect/http"

const codeByStatus: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  406: "not_acceptable",
  408: "request_timeout",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable_entity",
  429: "rate_limited",
  500: "internal",
  503: "unavailable"
}

export const codeForStatus = (status: number): string => codeByStatus[status] ?? (status >= 500 ? "internal" : "bad_request")

/** `{"error": {"code", "message", "details"?}}` with the given status. */
export const errorResponse = (
  status: number,
  message: string,
  options: { readonly code?: string; readonly details?: Record<string, unknown>; readonly headers?: Record<string, string> } = {}
) => {
  const error: ErrorBody = {
    code: options.code ?? codeForStatus(status),
    message,
    ...(options.details === undefined ? {} : { details: options.details })
  }
  return HttpServerResponse.jsonUnsafe({ error }, { status, headers: options.headers })
}
