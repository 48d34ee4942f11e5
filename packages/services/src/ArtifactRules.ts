import { ArtifactTooLarge, makeId } from "@cowork/domain"
import { Effect, Stream } from "effect"
import { sha256Stream } from "./Secrets.ts"
import type { ObjectStore } from "./ObjectStore.ts"

/** What every `Artifacts` store shares: ids, object keys, and the metered upload. */

const newArtifactId = (): string => makeId("art")

const artifactObjectKey = (orgId: string, sessionId: string, artifactId: string): string =>
  `artifacts/${orgId}/${sessionId}/${artifactId}`

/** Where every object of an org's artifacts lives. */
export const orgArtifactPrefix = (orgId: string): string => `artifacts/${orgId}/`

/** Deletes the objects still under the org's artifact prefix (after its rows' objects went): how many there were. */
export const deleteStrayArtifactObjects = (store: ObjectStore["Service"], orgId: string) =>
  Effect.gen(function*() {
    const left = yield* store.list(orgArtifactPrefix(orgId))
    yield* Effect.forEach(left, (object) => store.delete(object.key), { concurrency: 8, discard: true })
    return left.length
  })

/**
 * The upload stream, counted and hashed as it passes: it fails with `ArtifactTooLarge` as soon as it exceeds
 * `maxBytes`; `size` and `sha256` are read once the stream has run.
 */
const meteredBody = <E>(body: Stream.Stream<Uint8Array, E>, maxBytes: number) => {
  const hash = sha256Stream()
  let size = 0
  const stream = body.pipe(
    Stream.mapEffect((chunk) => {
      size += chunk.byteLength
      if (size > maxBytes) return Effect.fail(new ArtifactTooLarge({ limitBytes: maxBytes }))
      hash.update(chunk)
      return Effect.succeed(chunk)
    })
  )
  return { stream, size: () => size, sha256: () => hash.digestHex() }
}

/**
 * The first half of creating an artifact, the same in every layer: a new id, and the upload streamed into the store
 * under its key, metered (`ArtifactTooLarge` past `maxBytes`); a failed upload's partial object is removed (some
 * adapters leave one). Returns what the metadata row records.
 */
export const storeArtifactBytes = <E>(
  store: ObjectStore["Service"],
  input: {
    readonly orgId: string
    readonly sessionId: string
    readonly contentType: string
    readonly body: Stream.Stream<Uint8Array, E>
    readonly maxBytes: number
  }
) =>
  Effect.gen(function*() {
    const id = newArtifactId()
    const key = artifactObjectKey(input.orgId, input.sessionId, id)
    const metered = meteredBody(input.body, input.maxBytes)
    yield* store.put(key, metered.stream, { contentType: input.contentType }).pipe(
      Effect.tapError(() => store.delete(key).pipe(Effect.ignore))
    )
    return { id, key, size: metered.size(), sha256: metered.sha256() }
  })
