import { ArtifactTooLarge, makeId } from "@cowork/domain"
import { Effect, Stream } from "effect"
import { sha256Stream } from "./Secrets.ts"

/** What every `Artifacts` store shares: ids, object keys, and the metered upload. */

export const newArtifactId = (): string => makeId("art")

export const artifactObjectKey = (orgId: string, sessionId: string, artifactId: string): string =>
  `artifacts/${orgId}/${sessionId}/${artifactId}`

/**
 * The upload stream, counted and hashed as it passes: it fails with `ArtifactTooLarge` as soon as it exceeds
 * `maxBytes`; `size` and `sha256` are read once the stream has run.
 */
export const meteredBody = <E>(body: Stream.Stream<Uint8Array, E>, maxBytes: number) => {
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
