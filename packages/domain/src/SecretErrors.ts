import { Schema } from "effect"

/** The secret adapter cannot produce key material (key file unreadable or malformed, KMS down). */
export class SecretAdapterUnavailable extends Schema.TaggedError<SecretAdapterUnavailable>()("SecretAdapterUnavailable", {
  message: Schema.String
}, { httpApiStatus: 503 }) {}

/**
 * An envelope could not be opened: tampered or truncated, sealed for another org or context, or sealed with a
 * key this adapter does not hold. Never says which bytes were wrong.
 */
export class SecretRevealFailed extends Schema.TaggedError<SecretRevealFailed>()("SecretRevealFailed", {
  reason: Schema.Literals(["malformed", "unknown_key", "authentication_failed"]),
  message: Schema.String
}) {}
