import { Schema, SchemaTransformation } from "effect"
import { HttpApiSchema } from "effect/http-api"
import * as Artifact from "./Artifact.ts"
import * as Channel from "./Channel.ts"
import * as Errors from "./Errors.ts"
import * as StorageErrors from "./StorageErrors.ts"
import * as WorkerPlane from "./WorkerPlane.ts"

/**
 * The one path from a domain error to the wire. Endpoints declare the domain errors they can fail with, each in
 * its wire form from this module: the status is the error's own `httpApiStatus`, the body is
 * `{"error": {"code", "message", "details"?}}` built by `envelope`, and what the caller may see (never a secret,
 * never why a credential was refused) is decided here, once per error. The generated client decodes the same
 * bodies back into the domain errors.
 */

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
  431: "request_header_fields_too_large",
  500: "internal",
  503: "unavailable"
}

/** The error `code` of a status: one code per status, so a client can branch on either. */
export const codeForStatus = (status: number): string => codeByStatus[status] ?? (status >= 500 ? "internal" : "bad_request")

/** The body of every error response: `{"error": {"code", "message", "details"?}}`. */
export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
})
export type ErrorBody = typeof ErrorBody.Type

export type Details = Record<string, unknown>

/** The one builder of an error body; the request guard uses it for failures that never reach a handler. */
export const envelope = (status: number, message: string, details?: Details): { readonly error: ErrorBody } => ({
  error: { code: codeForStatus(status), message, ...(details === undefined ? {} : { details }) }
})

const envelopeSchema = (status: number) =>
  Schema.Struct({
    error: Schema.Struct({
      code: Schema.Literal(codeForStatus(status)),
      message: Schema.String,
      details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
    })
  })

/** The status a domain error class declares (`httpApiStatus`); a class without one cannot go on the wire. */
const statusOf = (self: Schema.Top): number => {
  const status = self.ast.annotations?.httpApiStatus
  if (typeof status !== "number") throw new Error(`${String(self.ast.annotations?.identifier)} declares no httpApiStatus`)
  return status
}

interface Codec<T> {
  /** What the caller sees. */
  readonly encode: (error: T) => { readonly message: string; readonly details?: Details | undefined }
  /** The domain error a client rebuilds from the body. */
  readonly decode: (body: ErrorBody) => T
}

/** The wire form of a domain error, with the status its class declares. */
const wire = <S extends Schema.Top>(self: S, codec: Codec<S["Type"]>) => {
  const status = statusOf(self)
  return envelopeSchema(status).pipe(
    Schema.decodeTo(
      Schema.toType(self),
      SchemaTransformation.transform({
        decode: ({ error }) => codec.decode(error),
        encode: (value) => {
          const { message, details } = codec.encode(value)
          return envelope(status, message, details)
        }
      })
    )
  ).annotate({ httpApiStatus: status })
}

/** `wire` plus a `Retry-After` header (seconds, rounded up) derived from the error. */
const wireWithRetryAfter = <S extends Schema.Top>(
  self: S,
  codec: Omit<Codec<S["Type"]>, "decode"> & {
    readonly decode: (body: ErrorBody, retryAfter: { readonly seconds: number; readonly ms: number | undefined }) => S["Type"]
    readonly retryAfterSeconds: (error: S["Type"]) => number
    readonly extra?: (error: S["Type"]) => Details
  }
) => {
  const status = statusOf(self)
  const body = Schema.Struct({
    ...envelopeSchema(status).fields,
    retryAfterMs: Schema.optional(Schema.Number)
  }).annotate({ httpApiStatus: status })
  return self.pipe(
    HttpApiSchema.encodeToWithHeaders({ body, headers: { "retry-after": Schema.String } }, {
      decode: ({ body, headers }) => codec.decode(body.error, { seconds: Number(headers["retry-after"]) || 0, ms: body.retryAfterMs }),
      encode: (value) => {
        const { message, details } = codec.encode(value)
        return {
          body: { ...envelope(status, message, details), ...codec.extra?.(value) },
          headers: { "retry-after": String(Math.max(1, Math.ceil(codec.retryAfterSeconds(value)))) }
        }
      }
    })
  )
}

const details = (body: ErrorBody): Details => body.details ?? {}
const str = (value: unknown): string => (typeof value === "string" ? value : "")
const num = (value: unknown): number => (typeof value === "number" ? value : 0)
const strings = (value: unknown): ReadonlyArray<string> => (Array.isArray(value) ? value.filter((v) => typeof v === "string") : [])

export const BadRequest = wire(Errors.BadRequest, {
  encode: (e) => ({ message: e.message, details: e.field === undefined ? undefined : { field: e.field } }),
  decode: (body) => new Errors.BadRequest({ message: body.message, field: body.details?.field === undefined ? undefined : str(body.details.field) })
})

/** Why a credential was refused (`reason`) is counted and logged, never shown: the body carries the message only. */
export const Unauthorized = wire(Errors.Unauthorized, {
  encode: (e) => ({ message: e.message }),
  decode: (body) => new Errors.Unauthorized({ message: body.message })
})

export const SignatureRefused = wire(Errors.SignatureRefused, {
  encode: (e) => ({ message: e.message }),
  decode: (body) => new Errors.SignatureRefused({ message: body.message })
})

export const Forbidden = wire(Errors.Forbidden, {
  encode: (e) => ({ message: e.message, details: e.requiredScopes === undefined ? undefined : { requiredScopes: e.requiredScopes } }),
  decode: (body) =>
    new Errors.Forbidden({ message: body.message, requiredScopes: body.details?.requiredScopes === undefined ? undefined : strings(body.details.requiredScopes) })
})

export const NotFound = wire(Errors.NotFound, {
  encode: (e) => ({ message: e.message }),
  decode: (body) => new Errors.NotFound({ message: body.message })
})

export const Conflict = wire(Errors.Conflict, {
  encode: (e) => ({ message: e.message, details: e.details }),
  decode: (body) => new Errors.Conflict({ message: body.message, details: body.details })
})

/** A worker lifecycle action the transition table forbids: the 409 names both states. */
export const IllegalTransition = wire(WorkerPlane.IllegalTransition, {
  encode: (e) => ({
    message: `illegal transition for worker ${e.workerId}: ${e.from} → ${e.to} (${e.action})`,
    details: { workerId: e.workerId, from: e.from, to: e.to, action: e.action }
  }),
  decode: (body) =>
    new WorkerPlane.IllegalTransition({
      workerId: str(details(body).workerId),
      from: str(details(body).from),
      to: str(details(body).to),
      action: str(details(body).action)
    })
})

export const PayloadTooLarge = wire(Errors.PayloadTooLarge, {
  encode: (e) => ({ message: e.message, details: e.details }),
  decode: (body) => new Errors.PayloadTooLarge({ message: body.message, details: body.details })
})

export const ArtifactTooLarge = wire(Artifact.ArtifactTooLarge, {
  encode: (e) => ({ message: `artifact exceeds ${e.limitBytes} bytes`, details: { limitBytes: e.limitBytes } }),
  decode: (body) => new Artifact.ArtifactTooLarge({ limitBytes: num(details(body).limitBytes) })
})

export const UnsupportedMediaType = wire(Errors.UnsupportedMediaType, {
  encode: (e) => ({
    message: `content type \`${e.contentType}\` is not allowed here`,
    details: { contentType: e.contentType, allowed: e.allowed }
  }),
  decode: (body) => new Errors.UnsupportedMediaType({ contentType: str(details(body).contentType), allowed: strings(details(body).allowed) })
})

/** 429: `Retry-After` (seconds) on the response and `retryAfterMs` in the body. */
export const RateLimited = wireWithRetryAfter(Errors.RateLimited, {
  encode: (e) => ({ message: e.message, details: e.details }),
  decode: (body, retryAfter) =>
    new Errors.RateLimited({ message: body.message, retryAfterMs: retryAfter.ms ?? retryAfter.seconds * 1_000, details: body.details }),
  retryAfterSeconds: (e) => e.retryAfterMs / 1_000,
  extra: (e) => ({ retryAfterMs: e.retryAfterMs })
})

/** 503 with `Retry-After`. */
export const Unavailable = wireWithRetryAfter(Errors.Unavailable, {
  encode: (e) => ({ message: e.message }),
  decode: (body, retryAfter) => new Errors.Unavailable({ message: body.message, retryAfterSeconds: retryAfter.seconds }),
  retryAfterSeconds: (e) => e.retryAfterSeconds
})

/** The store's own message may name hosts or keys: the caller gets a generic one and the failed operation. */
export const ObjectStoreUnavailable = wire(StorageErrors.ObjectStoreUnavailable, {
  encode: (e) => ({ message: "the object store is unavailable; retry later", details: { operation: e.operation } }),
  decode: (body) => {
    const operation = details(body).operation
    return new StorageErrors.ObjectStoreUnavailable({
      operation: operation === "put" || operation === "head" || operation === "delete" || operation === "list" ? operation : "get",
      message: body.message
    })
  }
})

/** The key is internal (org and session ids, layout): never echoed. */
export const InvalidObjectKey = wire(StorageErrors.InvalidObjectKey, {
  encode: () => ({ message: "invalid object location" }),
  decode: () => new StorageErrors.InvalidObjectKey({ key: "", reason: "rejected by the server" })
})

/** 409 when a fenced delivery ack / renew or provider-event completion comes from a caller whose claim is gone. */
export const ClaimLost = wire(Channel.ClaimLost, {
  encode: (e) => ({
    message: `the ${e.kind === "delivery" ? "delivery" : "provider event"} claim is no longer held (${e.reason})`,
    details: { kind: e.kind, id: e.id, reason: e.reason }
  }),
  decode: (body) =>
    new Channel.ClaimLost({
      kind: details(body).kind === "provider_event" ? "provider_event" : "delivery",
      id: str(details(body).id),
      reason: details(body).reason === "expired" || details(body).reason === "reclaimed" ? details(body).reason as "expired" | "reclaimed" : "not_claimed"
    })
})
