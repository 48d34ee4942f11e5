import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Artifact, ArtifactPage } from "./Artifact.ts"
import { ArtifactCursor, Id, isStorableText, PageLimit, Text } from "./Input.ts"

/**
 * The JSON form of an upload (`content-type: application/json`): the file's name, its own content type and its
 * bytes in base64. The size limit applies to the decoded bytes.
 */
export const ArtifactUploadJson = Schema.Struct({
  filename: Text(255),
  contentType: Text(255).check(Schema.isMinLength(1)),
  dataBase64: Schema.String.check(isStorableText)
})
export type ArtifactUploadJson = typeof ArtifactUploadJson.Type

/** The multipart form field that carries the file (`curl -F file=@report.pdf`, a browser's file input). */
export const ARTIFACT_MULTIPART_FIELD = "file"

const pageQuery = {
  limit: Schema.optional(PageLimit(100)),
  cursor: Schema.optional(ArtifactCursor)
}

export class ArtifactsApi extends HttpApiGroup.make("artifacts")
  .add(
    HttpApiEndpoint.post("upload", "/api/sessions/:id/artifacts", {
      params: { id: Id },
      query: { name: Schema.optional(Text(255)) },
      payload: [HttpApiSchema.StreamUint8Array({ contentType: "application/octet-stream" }), ArtifactUploadJson],
      success: Schema.Struct({ artifact: Artifact }).pipe(HttpApiSchema.status(201)),
      error: [
        ApiError.BadRequest,
        ApiError.NotFound,
        ApiError.ArtifactTooLarge,
        ApiError.UnsupportedMediaType,
        ApiError.ObjectStoreUnavailable,
        ApiError.InvalidObjectKey
      ]
    }).annotate(
      OpenApi.Description,
      "Three forms: the raw bytes as the body (`Content-Type` is the file's type, `?name=` names it); JSON `{filename, contentType, dataBase64}` (`content-type: application/json`); or `multipart/form-data` with the file in a `file` part (its filename and type; `?name=` overrides the name). The file's content type must be on the allow-list (415), its size at most OPEN_COWORK_CLOUD_ARTIFACT_MAX_BYTES (413, counted on the decoded bytes). 201 `{artifact}`; appends `artifact.created` to the session."
    ),
    HttpApiEndpoint.get("listForSession", "/api/sessions/:id/artifacts", {
      params: { id: Id },
      query: pageQuery,
      success: ArtifactPage,
      error: [ApiError.BadRequest, ApiError.NotFound]
    }),
    HttpApiEndpoint.get("download", "/api/sessions/:id/artifacts/:aid", {
      params: { id: Id, aid: Id },
      success: HttpApiSchema.StreamUint8Array(),
      error: [ApiError.NotFound, ApiError.ObjectStoreUnavailable, ApiError.InvalidObjectKey]
    }).annotate(OpenApi.Description, "Streams the bytes from the object store with the stored content type."),
    HttpApiEndpoint.get("list", "/api/artifacts", {
      query: pageQuery,
      success: ArtifactPage,
      error: [ApiError.BadRequest, ApiError.NotFound]
    })
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Artifacts", description: "Session files, stored in the object store" }))
{}
