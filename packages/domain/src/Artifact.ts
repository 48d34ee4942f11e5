import { Schema } from "effect"

/** A file attached to a session: metadata in Postgres, bytes in the object store. */
export const Artifact = Schema.Struct({
  id: Schema.String,
  sessionId: Schema.String,
  name: Schema.String,
  contentType: Schema.String,
  sizeBytes: Schema.Number,
  sha256: Schema.String,
  createdAt: Schema.String
})
export type Artifact = typeof Artifact.Type

export const ArtifactPage = Schema.Struct({
  artifacts: Schema.Array(Artifact),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})
export type ArtifactPage = typeof ArtifactPage.Type

export const DEFAULT_ARTIFACT_MAX_BYTES = 25 * 1024 * 1024

/** Content types accepted by default (OPEN_COWORK_CLOUD_ARTIFACT_CONTENT_TYPES replaces the list). */
export const DEFAULT_ARTIFACT_CONTENT_TYPES: ReadonlyArray<string> = [
  "text/plain",
  "text/markdown",
  "text/csv",
  "application/json",
  "application/pdf",
  "application/zip",
  "application/octet-stream",
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp"
]

const NAME_PATTERN = /^[^/\\\u0000-\u001f\u007f]{1,255}$/

/** A display/download name: 1–255 characters, no path separators or control characters. */
export const isArtifactName = (name: string): boolean => NAME_PATTERN.test(name) && name !== "." && name !== ".."

/** The upload grew past the configured limit; nothing was stored. */
export class ArtifactTooLarge extends Schema.TaggedError<ArtifactTooLarge>()("ArtifactTooLarge", {
  limitBytes: Schema.Number
}, { httpApiStatus: 413 }) {}
