import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Artifact, ArtifactPage } from "./Artifact.ts"
import { ArtifactCursor, Id, PageLimit, Text } from "./Input.ts"

const pageQuery = {
  limit: Schema.optional(PageLimit(100)),
  cursor: Schema.optional(ArtifactCursor)
}

export class ArtifactsApi extends HttpApiGroup.make("artifacts")
  .add(
    HttpApiEndpoint.post("upload", "/api/sessions/:id/artifacts", {
      params: { id: Id },
      query: { name: Schema.optional(Text(255)) },
      payload: HttpApiSchema.StreamUint8Array({ contentType: "application/octet-stream" }),
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
      "The raw bytes are the body; `Content-Type` must be on the allow-list (415 otherwise), the size at most OPEN_COWORK_CLOUD_ARTIFACT_MAX_BYTES (413). `?name=` names the file. Appends `artifact.created` to the session."
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
