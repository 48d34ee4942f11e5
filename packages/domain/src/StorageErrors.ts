import { Schema } from "effect"

/**
 * The object store could not be reached or refused the operation (network, credentials, disk). Transient from
 * the caller's point of view: the work that needed it stays pending and is retried. `message` never carries
 * credentials or signed URLs.
 */
export class ObjectStoreUnavailable extends Schema.TaggedError<ObjectStoreUnavailable>()("ObjectStoreUnavailable", {
  operation: Schema.Literals(["get", "put", "head", "delete", "list"]),
  key: Schema.optional(Schema.String),
  message: Schema.String
}, { httpApiStatus: 503 }) {}

/** No object under this key. */
export class ObjectNotFound extends Schema.TaggedError<ObjectNotFound>()("ObjectNotFound", {
  key: Schema.String
}, { httpApiStatus: 404 }) {}

/** A key that could escape its namespace (`..`, absolute, backslashes, control characters) or is empty. */
export class InvalidObjectKey extends Schema.TaggedError<InvalidObjectKey>()("InvalidObjectKey", {
  key: Schema.String,
  reason: Schema.String
}, { httpApiStatus: 400 }) {}

/** A checkpoint's manifest or chunk does not decode or does not match its content address. */
export class CheckpointCorrupt extends Schema.TaggedError<CheckpointCorrupt>()("CheckpointCorrupt", {
  key: Schema.String,
  message: Schema.String
}) {}
