import { Api } from "@cowork/domain"
import { Effect, Redacted } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"

/**
 * The typed client of the Cowork Cloud API, derived from the one `Api` definition: every group and endpoint (later
 * ones included) with its params, query, payload and success types, and the declared domain errors decoded back
 * from the wire (`NotFound`, `Conflict`, `RateLimited` with `retryAfterMs`, ...).
 */
export type Client = HttpApiClient.ForApi<typeof Api>

export interface Options {
  /** `http://127.0.0.1:8787`, no trailing path. */
  readonly baseUrl: string
  /** An API token (`occ_...`); unset for the health routes only. */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /**
   * A browser signed in with a session cookie (the workbench): the session's CSRF token, read per request and sent
   * as `X-CSRF-Token` (the cookie itself travels with `fetch`'s same-origin credentials, never through here).
   */
  readonly csrfToken?: (() => string | undefined) | undefined
}

const withToken = (token: Options["token"]) => (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  token === undefined
    ? client
    : HttpClient.mapRequest(client, HttpClientRequest.bearerToken(Redacted.isRedacted(token) ? Redacted.value(token) : token))

const withCsrf = (csrfToken: Options["csrfToken"]) => (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  csrfToken === undefined
    ? client
    : HttpClient.mapRequest(client, (request) => {
      const value = csrfToken()
      return value === undefined ? request : HttpClientRequest.setHeader(request, "x-csrf-token", value)
    })

/** A client over the ambient `HttpClient`. */
export const make = (options: Options) =>
  HttpApiClient.make(Api, {
    baseUrl: options.baseUrl,
    transformClient: (client) => withCsrf(options.csrfToken)(withToken(options.token)(client))
  })

/** A client over `fetch`, for scripts and tests that run it with `Effect.runPromise`. */
export const makeFetch = (options: Options) => make(options).pipe(Effect.provide(FetchHttpClient.layer))
