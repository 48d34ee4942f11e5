import { ApiError } from "@cowork/domain"
import { HttpServerResponse } from "effect/http"

/**
 * A failure that never reached a handler (unknown route, undecodable input, oversized body, defect) as the same
 * `{"error": {"code", "message", "details"?}}` body the endpoints' declared errors encode to.
 */
export const errorResponse = (
  status: number,
  message: string,
  options: { readonly details?: ApiError.Details; readonly headers?: Record<string, string> } = {}
) => HttpServerResponse.jsonUnsafe(ApiError.envelope(status, message, options.details), { status, headers: options.headers })
