import { Schema } from "effect"

/**
 * The owner write a stale owner attempted: an event append, a command completion (the ack with its final batch),
 * a checkpoint ack, taking the next command, noting a command error, or renewing, releasing or expiring the lease.
 * Every store raises exactly these, and the stale-owner metric uses them as its `operation` label.
 */
export const StaleOwnerOperation = Schema.Literals([
  "append", "complete", "checkpoint", "next", "note_error", "renew", "release", "expire"
])
export type StaleOwnerOperation = typeof StaleOwnerOperation.Type

/** A lease holder's write was refused: its `(session_id, epoch)` is no longer the live lease. */
export class StaleOwner extends Schema.TaggedError<StaleOwner>()("StaleOwner", {
  sessionId: Schema.String,
  epoch: Schema.Number,
  operation: StaleOwnerOperation
}, { httpApiStatus: 409 }) {}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String
}, { httpApiStatus: 404 }) {}

/** `details` travels to the caller (e.g. the idempotency key that clashed); it must never carry a secret. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  message: Schema.String,
  details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
}, { httpApiStatus: 409 }) {}

/**
 * Why a credential was refused. INTERNAL ONLY (metrics, logs): what the caller sees is one generic 401, so the
 * response never reveals whether a token exists. `expired_token` / `revoked_token` are only ever reported for a
 * presented secret that matches, so only the token's holder could cause them.
 */
export const UnauthorizedReason = Schema.Literals(["missing_credentials", "invalid_token", "expired_token", "revoked_token"])
export type UnauthorizedReason = typeof UnauthorizedReason.Type

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String,
  reason: Schema.optional(UnauthorizedReason)
}, { httpApiStatus: 401 }) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String,
  /** Any one of these scopes would have been accepted. */
  requiredScopes: Schema.optional(Schema.Array(Schema.String))
}, { httpApiStatus: 403 }) {}

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  message: Schema.String,
  field: Schema.optional(Schema.String)
}, { httpApiStatus: 400 }) {}

/** A dependency is down or this process is draining: retry after `retryAfterSeconds` (the `Retry-After` header). */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  retryAfterSeconds: Schema.Number
}, { httpApiStatus: 503 }) {}

/**
 * A signed request (a workflow webhook) whose signature or timestamp is refused. Unlike a bearer token's 401, the
 * message says what failed (missing header, stale timestamp, mismatch): the sender holds the secret either way.
 */
export class SignatureRefused extends Schema.TaggedError<SignatureRefused>()("SignatureRefused", {
  message: Schema.String
}, { httpApiStatus: 401 }) {}

/** The caller is over a limit: retry after `retryAfterMs` (body) / `Retry-After` (header, seconds). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  message: Schema.String,
  retryAfterMs: Schema.Number,
  details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
}, { httpApiStatus: 429 }) {}

/** An input is over its size bound (`details` names the field and the limit). */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String,
  details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
}, { httpApiStatus: 413 }) {}

/** The request's media type is not one this route accepts. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  contentType: Schema.String,
  allowed: Schema.Array(Schema.String)
}, { httpApiStatus: 415 }) {}

/** The agent runtime failed while running a command (a runtime fault, not a lost lease). */
export class RuntimeFailure extends Schema.TaggedError<RuntimeFailure>()("RuntimeFailure", {
  message: Schema.String
}) {}
