import {
  ARTIFACT_MULTIPART_FIELD,
  ArtifactTooLarge,
  ArtifactUploadJson,
  BadRequest,
  isArtifactName,
  UnsupportedMediaType
} from "@cowork/domain"
import { Effect, Option, Ref, Schema, SchemaIssue, Stream } from "effect"
import { type HttpServerRequest, Multipart } from "effect/http"

/**
 * The three forms of `POST /api/sessions/:id/artifacts`, reduced to one file to store: raw bytes (the body is the
 * file), JSON `{filename, contentType, dataBase64}`, and `multipart/form-data` with a `file` part. Every form goes
 * through the same checks (name, content-type allow-list, size on the file's own bytes) before it is stored.
 */

export interface UploadSettings {
  readonly maxBytes: number
  readonly allowedContentTypes: ReadonlyArray<string>
}

/** One file to store: its name, its own content type, and its bytes. */
export interface UploadedFile<E> {
  readonly name: string
  readonly contentType: string
  readonly body: Stream.Stream<Uint8Array, E>
}

/** Request bytes an upload may take: base64 (4 bytes per 3) plus room for the JSON or multipart framing. */
export const maxUploadRequestBytes = (maxBytes: number) => Math.ceil(maxBytes / 3) * 4 + 64 * 1024

/** Parts a multipart upload may carry (the file and a few fields); more is a malformed or hostile body. */
const MAX_MULTIPART_PARTS = 16

const mediaType = (header: string | undefined) => header?.split(";")[0]?.trim().toLowerCase() ?? ""

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

const checkFile = (settings: UploadSettings, file: { readonly name: string; readonly contentType: string }, nameField: string) =>
  Effect.gen(function*() {
    const contentType = mediaType(file.contentType)
    if (contentType === "") {
      return yield* new BadRequest({ message: "missing content type: send the artifact's media type", field: "content-type" })
    }
    if (!settings.allowedContentTypes.includes(contentType)) {
      return yield* new UnsupportedMediaType({ contentType, allowed: settings.allowedContentTypes })
    }
    if (!isArtifactName(file.name)) {
      return yield* new BadRequest({
        message: `invalid \`${nameField}\`: 1-255 characters, no slashes or control characters`,
        field: nameField
      })
    }
    return contentType
  })

const isBodyTooLarge = (error: unknown): boolean => {
  const reason = (error as { reason?: { reason?: unknown } } | undefined)?.reason
  return reason?.reason === "BodyTooLarge"
}

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** `content-type: application/json`: the envelope, checked, with the base64 decoded (the size limit on the result). */
const fromJson = (request: HttpServerRequest.HttpServerRequest, settings: UploadSettings, nameOverride: string | undefined) =>
  Effect.gen(function*() {
    const raw = yield* request.json.pipe(
      Effect.mapError((error) =>
        isBodyTooLarge(error)
          ? new ArtifactTooLarge({ limitBytes: settings.maxBytes })
          : new BadRequest({ message: "invalid JSON body: expected {filename, contentType, dataBase64}" })
      )
    )
    const envelope = yield* Schema.decodeUnknownEffect(ArtifactUploadJson)(raw, { errors: "all" }).pipe(
      Effect.mapError((error) => {
        // Name a field that is present but wrong before one that is missing.
        const issues = formatIssue(error.issue).issues
        const issue = issues.find((candidate) => candidate.message !== "Missing key") ?? issues[0]
        const field = issue?.path?.map((segment) => String(typeof segment === "object" ? segment.key : segment)).join(".")
        return new BadRequest({
          message: `invalid body field \`${field ?? "body"}\`: ${issue?.message ?? "expected {filename, contentType, dataBase64}"}`,
          field: field === undefined || field === "" ? undefined : field
        })
      })
    )
    const name = nameOverride ?? envelope.filename
    const contentType = yield* checkFile(settings, { name, contentType: envelope.contentType }, nameOverride === undefined ? "filename" : "name")
    const data = envelope.dataBase64
    const padding = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0
    if ((data.length / 4) * 3 - padding > settings.maxBytes) return yield* new ArtifactTooLarge({ limitBytes: settings.maxBytes })
    if (!BASE64.test(data)) {
      return yield* new BadRequest({ message: "invalid body field `dataBase64`: expected standard padded base64", field: "dataBase64" })
    }
    const bytes = new Uint8Array(Buffer.from(data, "base64"))
    return { name, contentType, body: Stream.make(bytes) } satisfies UploadedFile<never>
  })

/** The raw body is the file: `Content-Type` is its type, `?name=` its name. */
const fromRaw = (request: HttpServerRequest.HttpServerRequest, settings: UploadSettings, nameOverride: string | undefined) =>
  Effect.gen(function*() {
    const name = nameOverride ?? "artifact"
    const contentType = yield* checkFile(settings, { name, contentType: request.headers["content-type"] ?? "" }, "name")
    if (Number(request.headers["content-length"] ?? 0) > settings.maxBytes) {
      return yield* new ArtifactTooLarge({ limitBytes: settings.maxBytes })
    }
    return { name, contentType, body: Stream.orDie(request.stream) } satisfies UploadedFile<never>
  })

/** The request body outgrew its limit (while the parser read it), else the body is malformed: 413 or 400. */
const multipartError = (settings: UploadSettings) => (error: Multipart.MultipartError) =>
  error.reason._tag === "FileTooLarge" || error.reason._tag === "BodyTooLarge" ||
    (error.reason._tag === "InternalError" && isBodyTooLarge(error.reason.cause))
    ? new ArtifactTooLarge({ limitBytes: settings.maxBytes })
    : new BadRequest({ message: `invalid multipart/form-data body (${error.reason._tag})`, field: ARTIFACT_MULTIPART_FIELD })

/**
 * Reads the upload in whichever form it came and hands the one file to `store` while the body streams (a multipart
 * file is never buffered whole). Fails with the domain error the endpoint declares for each refusal.
 */
export const receiveUpload = <A, E>(
  request: HttpServerRequest.HttpServerRequest,
  settings: UploadSettings,
  nameOverride: string | undefined,
  store: (file: UploadedFile<BadRequest | ArtifactTooLarge>) => Effect.Effect<A, E>
): Effect.Effect<A, E | BadRequest | ArtifactTooLarge | UnsupportedMediaType> => {
  const type = mediaType(request.headers["content-type"])
  if (type === "application/json") return Effect.flatMap(fromJson(request, settings, nameOverride), store)
  if (type !== "multipart/form-data") return Effect.flatMap(fromRaw(request, settings, nameOverride), store)
  return Effect.gen(function*() {
    const stored = yield* Ref.make(Option.none<A>())
    const toDomain = multipartError(settings)
    yield* request.multipartStream.pipe(
      Stream.mapError(toDomain),
      Stream.runForEach((part) =>
        Effect.gen(function*() {
          if (part._tag !== "File") return
          if (part.key !== ARTIFACT_MULTIPART_FIELD || Option.isSome(yield* Ref.get(stored))) {
            return yield* Stream.runDrain(Stream.mapError(part.content, toDomain))
          }
          const name = nameOverride ?? part.name
          const contentType = yield* checkFile(settings, { name, contentType: part.contentType }, nameOverride === undefined ? "file" : "name")
          const result = yield* store({ name, contentType, body: Stream.mapError(part.content, toDomain) })
          yield* Ref.set(stored, Option.some(result))
        })
      ),
      Effect.provideService(Multipart.MaxParts, MAX_MULTIPART_PARTS)
    )
    const result = yield* Ref.get(stored)
    if (Option.isNone(result)) {
      return yield* new BadRequest({ message: "the multipart body has no `file` part", field: ARTIFACT_MULTIPART_FIELD })
    }
    return result.value
  })
}
