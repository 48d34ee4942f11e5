import type { Artifact, ArtifactTooLarge, InvalidObjectKey, NotFound, ObjectStoreUnavailable, RateLimited } from "@cowork/domain"
import { Context, Effect, Layer, type Stream } from "effect"
import { makeArtifactsMemory } from "./ArtifactsMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { type ObjectBody, type ObjectListing, ObjectStore } from "./ObjectStore.ts"

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

/** What deleting an org's artifacts removed. */
export interface OrgArtifactsDeleted {
  /** Artifacts (metadata rows) deleted with their objects. */
  readonly artifacts: number
  readonly bytes: number
  /** Objects under the org's prefix with no metadata row (a failed upload's leftovers), deleted too. */
  readonly strayObjects: number
}

/** One page of artifacts, newest first, and the cursor of the next (null: the last page). No count: see `countOrg`. */
export interface ArtifactsPage {
  readonly artifacts: ReadonlyArray<Artifact>
  readonly nextCursor: string | null
}

/** What an age-based retention pass removed, per org (orgs with nothing removed are absent). */
export type ArtifactsPruned = ReadonlyArray<{ readonly orgId: string; readonly artifacts: number; readonly bytes: number }>

/** Artifacts deleted per batch (objects first, then their rows). */
export const ARTIFACT_DELETE_BATCH = 200

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
  /**
   * Newest first; `sessionId` undefined lists the whole org. NotFound for a session outside the org. A page counts
   * nothing (a caller paging through everything, an export, would count once per page): see `totalEstimate`.
   */
  readonly list: (
    orgId: string,
    options: { readonly sessionId?: string | undefined; readonly limit: number; readonly cursor?: string | undefined }
  ) => Effect.Effect<ArtifactsPage, NotFound>
  /**
   * Deletes every artifact of the org (offboarding under the `delete` retention policy): in batches, the objects
   * first, then their rows, then any object left under `artifacts/<org>/`. An object store failure stops it with
   * what is left still listed: running it again finishes the job.
   */
  readonly deleteOrg: (orgId: string) => Effect.Effect<OrgArtifactsDeleted, ObjectStoreUnavailable | InvalidObjectKey>
  /**
   * Retention by age: deletes the artifacts (objects, then rows, in batches) created more than `olderThanMs` ago by
   * the store's clock, of one org or of every org. Stops at an object store failure; run again to finish.
   */
  readonly deleteOlderThan: (
    olderThanMs: number,
    orgId: string | undefined
  ) => Effect.Effect<ArtifactsPruned, ObjectStoreUnavailable | InvalidObjectKey>
  /**
   * A list's `totalEstimate`: the artifacts of the org (of one of its sessions, with `sessionId`), exact up to 1,000 and
   * the planner's estimate beyond (Postgres), never a count over the whole org per page.
   */
  readonly totalEstimate: (orgId: string, sessionId?: string | undefined) => Effect.Effect<number>
  /** How many artifacts (rows) the org has. */
  readonly countOrg: (orgId: string) => Effect.Effect<number>
  /**
   * The objects under the org's prefix (`artifacts/<org>/`) that no metadata row of the org names: a failed upload's
   * leftovers, or bytes whose row was deleted by hand. An upload in flight (object stored, row not yet committed) is
   * one for that moment.
   */
  readonly orphanObjects: (orgId: string) => Effect.Effect<ReadonlyArray<ObjectListing>, ObjectStoreUnavailable | InvalidObjectKey>
}>()("cowork/Artifacts") {
  /** Metadata over the shared `MemoryDatabase`, bytes in whatever `ObjectStore` is provided. */
  static readonly layerMemory: Layer.Layer<Artifacts, never, MemoryDatabase | ObjectStore> = Layer.effect(
    Artifacts,
    Effect.gen(function*() {
      return makeArtifactsMemory(yield* MemoryDatabase, yield* ObjectStore)
    })
  )
}
