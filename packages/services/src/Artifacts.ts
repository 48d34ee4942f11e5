import type { Artifact, ArtifactPage, ArtifactTooLarge, InvalidObjectKey, NotFound, ObjectStoreUnavailable, RateLimited } from "@cowork/domain"
import { Context, Effect, Layer, type Stream } from "effect"
import { makeArtifactsMemory } from "./ArtifactsMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { type ObjectBody, ObjectStore } from "./ObjectStore.ts"

export interface NewArtifact<E> {
  readonly orgId: string
  readonly sessionId: string
  readonly name: string
  readonly contentType: string
  readonly createdBy: string
  readonly body: Stream.Stream<Uint8Array, E>
  readonly maxBytes: number
  /**
   * The org's `artifact_bytes_per_day` quota, checked with the metadata insert (the bytes are counted in the UTC day's
   * window): `RateLimited` when this upload would pass it, and the stored object is removed. Absent: not checked.
   */
  readonly bytesPerDay?: number | undefined
}

/**
 * Session artifacts: bytes in the object store under `artifacts/<org>/<session>/<id>`, metadata in Postgres, and
 * an `artifact.created` event on the session's stream once both are durable.
 */
export class Artifacts extends Context.Service<Artifacts, {
  readonly create: <E>(
    input: NewArtifact<E>
  ) => Effect.Effect<Artifact, NotFound | ArtifactTooLarge | ObjectStoreUnavailable | InvalidObjectKey | RateLimited | E>
  /** The artifact's metadata and its bytes as a stream. */
  readonly open: (
    orgId: string,
    sessionId: string,
    artifactId: string
  ) => Effect.Effect<{ readonly artifact: Artifact; readonly body: ObjectBody }, NotFound | ObjectStoreUnavailable | InvalidObjectKey>
  /** Newest first; `sessionId` undefined lists the whole org. NotFound for a session outside the org. */
  readonly list: (
    orgId: string,
    options: { readonly sessionId?: string | undefined; readonly limit: number; readonly cursor?: string | undefined }
  ) => Effect.Effect<ArtifactPage, NotFound>
}>()("cowork/Artifacts") {
  /** Metadata over the shared `MemoryDatabase`, bytes in whatever `ObjectStore` is provided. */
  static readonly layerMemory: Layer.Layer<Artifacts, never, MemoryDatabase | ObjectStore> = Layer.effect(
    Artifacts,
    Effect.gen(function*() {
      return makeArtifactsMemory(yield* MemoryDatabase, yield* ObjectStore)
    })
  )
}
