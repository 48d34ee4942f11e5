import { Schema } from "effect"

/** A lease holder's write was refused: its `(session_id, epoch)` is no longer the live lease. */
export class StaleOwner extends Schema.TaggedError<StaleOwner>()("StaleOwner", {
  sessionId: Schema.String,
  epoch: Schema.Number,
  operation: Schema.String
}, { httpApiStatus: 409 }) {}

/** The lease could not be renewed; the session fiber must stop. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  sessionId: Schema.String,
  epoch: Schema.Number
}) {}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String
}, { httpApiStatus: 404 }) {}

export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  message: Schema.String
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
  message: Schema.String
}, { httpApiStatus: 403 }) {}

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  message: Schema.String,
  field: Schema.optional(Schema.String)
}, { httpApiStatus: 400 }) {}

export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String
}, { httpApiStatus: 503 }) {}

/** The agent runtime failed while running a command (a runtime fault, not a lost lease). */
export class RuntimeFailure extends Schema.TaggedError<RuntimeFailure>()("RuntimeFailure", {
  message: Schema.String
}) {}
