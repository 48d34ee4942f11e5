import { Api, CurrentPrincipal, DEFAULT_ARTIFACT_CONTENT_TYPES, DEFAULT_ARTIFACT_MAX_BYTES, DEFAULT_PAGE_SIZE } from "@cowork/domain"
import { Artifacts } from "@cowork/services"
import { Config, Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { QuotaPolicy } from "./QuotaPolicy.ts"
import { maxUploadRequestBytes, receiveUpload } from "./ArtifactUpload.ts"

/**
 * Uploads answer with these limits; the request guard lets this one route's body reach `maxRequestBytes` (the file
 * as base64 in JSON, or in multipart framing), and each form then limits the file's own bytes to `maxBytes`.
 */
export const artifactSettings = Effect.gen(function*() {
  const maxBytes = yield* Config.Int("OPEN_COWORK_CLOUD_ARTIFACT_MAX_BYTES").pipe(Config.withDefault(DEFAULT_ARTIFACT_MAX_BYTES))
  const types = yield* Config.String("OPEN_COWORK_CLOUD_ARTIFACT_CONTENT_TYPES").pipe(Config.withDefault(""))
  const allowed = types.trim() === ""
    ? DEFAULT_ARTIFACT_CONTENT_TYPES
    : types.split(",").map((type) => type.trim().toLowerCase()).filter((type) => type !== "")
  return { maxBytes, maxRequestBytes: maxUploadRequestBytes(maxBytes), allowedContentTypes: allowed }
})

/** `attachment; filename*=UTF-8''...`: the stored name, percent-encoded so no header injection is possible. */
const contentDisposition = (name: string) => `attachment; filename*=UTF-8''${encodeURIComponent(name)}`

export const layer = HttpApiBuilder.group(Api, "artifacts", Effect.fn(function*(handlers) {
  const artifacts = yield* Artifacts
  const settings = yield* artifactSettings
  const quotas = yield* QuotaPolicy

  return handlers
    .handleRaw("upload", ({ params, query, request }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const bytesPerDay = (yield* quotas.forOrg(principal.orgId)).artifact_bytes_per_day
        const artifact = yield* receiveUpload(request, settings, query.name, (file) =>
          artifacts.create({
            orgId: principal.orgId,
            sessionId: params.id,
            name: file.name,
            contentType: file.contentType,
            createdBy: `token:${principal.tokenId}`,
            body: file.body,
            maxBytes: settings.maxBytes,
            bytesPerDay
          })).pipe(quotas.counted)
        return { artifact }
      }))
    .handle("listForSession", ({ params, query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const page = yield* artifacts.list(principal.orgId, {
          sessionId: params.id,
          limit: query.limit ?? DEFAULT_PAGE_SIZE,
          cursor: query.cursor
        })
        return { ...page, totalEstimate: yield* artifacts.totalEstimate(principal.orgId, params.id) }
      }))
    .handle("download", ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const { artifact, body } = yield* artifacts.open(principal.orgId, params.id, params.aid)
        return HttpServerResponse.stream(body.body, {
          contentType: artifact.contentType,
          contentLength: artifact.sizeBytes,
          headers: {
            "content-disposition": contentDisposition(artifact.name),
            "x-content-type-options": "nosniff",
            "cache-control": "private, no-store"
          }
        })
      }))
    .handle("list", ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const page = yield* artifacts.list(principal.orgId, { limit: query.limit ?? DEFAULT_PAGE_SIZE, cursor: query.cursor })
        return { ...page, totalEstimate: yield* artifacts.totalEstimate(principal.orgId) }
      }))
}))
