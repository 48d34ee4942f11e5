import { Api } from "@cowork/domain"
import { Context, Effect, Layer, Redacted } from "effect"
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
}

const withToken = (token: Options["token"]) => (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  token === undefined
    ? client
    : HttpClient.mapRequest(client, HttpClientRequest.bearerToken(Redacted.isRedacted(token) ? Redacted.value(token) : token))

/** A client over the ambient `HttpClient`. */
export const make = (options: Options) =>
  HttpApiClient.make(Api, { baseUrl: options.baseUrl, transformClient: withToken(options.token) })

/** A client over `fetch`, for scripts and tests that run it with `Effect.runPromise`. */
export const makeFetch = (options: Options) => make(options).pipe(Effect.provide(FetchHttpClient.layer))

export class CoworkClient extends Context.Service<CoworkClient, Client>()("cowork/client/CoworkClient") {
  /** The client over `fetch`. */
  static readonly layer = (options: Options) => Layer.effect(CoworkClient, makeFetch(options))
}
