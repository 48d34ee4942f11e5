import { type Client, makeFetch } from "@cowork/client"
import type { PublicConfig } from "@cowork/domain"
import { Cause, Effect, Exit } from "effect"

/**
 * The workbench's one way to the API: the typed client from packages/client over `fetch`, same origin. The browser
 * session cookie (HttpOnly) is the only credential and travels with each request; the CSRF token the server hands
 * out at sign-in is kept in memory here (never in storage or a URL) and sent as `X-CSRF-Token` on every request.
 */

export interface Bootstrap extends PublicConfig {
  readonly apiBase: string
  /** A session cookie came with the page (its validity is for /api/workspace to say). */
  readonly sessionCookie: boolean
}

export const readBootstrap = (): Bootstrap => {
  const element = document.getElementById("cowork-bootstrap")
  return JSON.parse(element?.textContent ?? "{}") as Bootstrap
}

let csrfToken: string | undefined

export const setCsrfToken = (token: string | undefined) => {
  csrfToken = token
}

/** An API failure as the UI shows it. */
class ApiFailure extends Error {
  readonly status: number | undefined
  readonly code: string
  constructor(status: number | undefined, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

const STATUS_BY_TAG: Readonly<Record<string, number>> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  Conflict: 409,
  IllegalTransition: 409,
  PayloadTooLarge: 413,
  RateLimited: 429,
  Unavailable: 503
}

const toFailure = (error: unknown): ApiFailure => {
  if (error instanceof ApiFailure) return error
  const tagged = error as { _tag?: unknown; message?: unknown; response?: { status?: unknown } } | null
  const tag = typeof tagged?._tag === "string" ? tagged._tag : "Error"
  const status = typeof tagged?.response?.status === "number" ? tagged.response.status : STATUS_BY_TAG[tag]
  const message = typeof tagged?.message === "string" && tagged.message !== "" ? tagged.message : `request failed (${tag})`
  return new ApiFailure(status, tag, message)
}

/** Listeners told when any call answers 401 (the session expired or was revoked elsewhere). */
const unauthorizedListeners = new Set<() => void>()
export const onUnauthorized = (listener: () => void) => {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

/** Runs one API effect; rejects with an `ApiFailure`. */
export const run = async <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = toFailure(Cause.squash(exit.cause))
  if (failure.status === 401) for (const listener of unauthorizedListeners) listener()
  throw failure
}

const origin = () => window.location.origin

/** The member's client: cookie + CSRF header. */
export const api: Client = await Effect.runPromise(makeFetch({ baseUrl: origin(), csrfToken: () => csrfToken }))

/** A client acting as a pasted operator token, for the operator page only (kept by the caller, in memory). */
export const operatorClient = (token: string): Promise<Client> => Effect.runPromise(makeFetch({ baseUrl: origin(), token }))

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))
