import { Schema, SchemaTransformation } from "effect"
import { fromBase64Url, toBase64Url } from "./Base64Url.ts"

/**
 * Bounds on everything a client sends, declared in the API schemas so a hostile value is a 400 naming its field
 * before any handler or database sees it. Postgres refuses NUL characters in text and unpaired UTF-16 surrogates in
 * JSON; deep nesting overflows the stack of recursive encoders.
 */

/** Deepest nesting accepted in free-form JSON (`projectSource`). */
const MAX_JSON_DEPTH = 32
/** Most values (objects, arrays, scalars) accepted in one free-form JSON field. */
const MAX_JSON_NODES = 10_000
/** Longest string (or object key) inside free-form JSON. */
const MAX_JSON_STRING_LENGTH = 16_384

/** Why the text cannot be stored, or `undefined` when it can. */
const textProblem = (text: string): string | undefined =>
  text.includes("\u0000")
    ? "must not contain NUL characters"
    : text.isWellFormed()
    ? undefined
    : "must not contain unpaired UTF-16 surrogates"

/** No NUL characters and well-formed UTF-16: text Postgres stores as given. */
export const isStorableText = Schema.makeFilter<string>((text) => textProblem(text) ?? true)

/** Storable text of at most `maxLength` characters. */
export const Text = (maxLength: number) => Schema.String.check(Schema.isMaxLength(maxLength), isStorableText)

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

/** An object id in a path or body: 1-100 of `A-Z a-z 0-9 . _ -`, starting alphanumeric. */
export const Id = Schema.String.annotate({ expected: "an id (1-100 of A-Z a-z 0-9 . _ -)" }).check(Schema.isPattern(ID_PATTERN))

/** `?limit=`: decimal digits only (`0x10`, `1e1`, ` 5` are refused), an integer in `[1, max]`. */
export const PageLimit = (max: number) =>
  Schema.String.annotate({ expected: "a decimal integer" }).check(Schema.isPattern(/^[0-9]{1,6}$/)).pipe(
    Schema.decodeTo(
      Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: max })),
      SchemaTransformation.numberFromString
    )
  )

/** Why `value` is not bounded JSON, or `undefined`. Iterative, so hostile nesting cannot overflow the stack. */
export const jsonProblem = (value: unknown): string | undefined => {
  const pending: Array<{ readonly value: unknown; readonly depth: number; readonly path: string }> = [{ value, depth: 0, path: "" }]
  let nodes = 0
  while (pending.length > 0) {
    const { depth, path, value: current } = pending.pop()!
    if (++nodes > MAX_JSON_NODES) return `more than ${MAX_JSON_NODES} values`
    if (typeof current === "string") {
      if (current.length > MAX_JSON_STRING_LENGTH) return `string${path === "" ? "" : ` at ${path}`} longer than ${MAX_JSON_STRING_LENGTH}`
      const problem = textProblem(current)
      if (problem !== undefined) return `string${path === "" ? "" : ` at ${path}`} ${problem}`
      continue
    }
    if (current === null || typeof current === "boolean") continue
    if (typeof current === "number") {
      if (!Number.isFinite(current)) return `number${path === "" ? "" : ` at ${path}`} is not finite`
      continue
    }
    if (typeof current !== "object") return `not JSON${path === "" ? "" : ` at ${path}`}`
    if (depth >= MAX_JSON_DEPTH) return `nested deeper than ${MAX_JSON_DEPTH} levels`
    if (Array.isArray(current)) {
      current.forEach((item, index) => pending.push({ value: item, depth: depth + 1, path: `${path}[${index}]` }))
      continue
    }
    for (const [key, item] of Object.entries(current)) {
      if (key.length > MAX_JSON_STRING_LENGTH) return `key longer than ${MAX_JSON_STRING_LENGTH}`
      const problem = textProblem(key)
      if (problem !== undefined) return `key${path === "" ? "" : ` at ${path}`} ${problem}`
      pending.push({ value: item, depth: depth + 1, path: `${path}.${key}` })
    }
  }
  return undefined
}

/** Free-form JSON bounded in depth, size and string content. */
export const BoundedJson = Schema.Unknown.annotate({
  description: `JSON nested at most ${MAX_JSON_DEPTH} deep, at most ${MAX_JSON_NODES} values, strings at most ${MAX_JSON_STRING_LENGTH} characters`
}).check(Schema.makeFilter((value) => jsonProblem(value) ?? true))

// ---------------------------------------------------------------------------------------------------------------
// Keyset cursors: opaque to clients, checked at the schema so a malformed one is a 400, never the first page.

/** Sessions: the base64url id of the previous page's last session. */
export const encodeSessionCursor = (sessionId: string): string => toBase64Url(sessionId)
export const decodeSessionCursor = (cursor: string): string | undefined => {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined
  const id = fromBase64Url(cursor)
  return id !== undefined && ID_PATTERN.test(id) && encodeSessionCursor(id) === cursor ? id : undefined
}

/** A keyset cursor holding a pair `[a, b]`: base64url JSON. */
export const encodeCursorPair = (a: unknown, b: unknown): string => toBase64Url(JSON.stringify([a, b]))
/** The pair of `encodeCursorPair` (at most 300 characters), not yet checked; `undefined` for anything else. */
export const decodeCursorPair = (cursor: string): readonly [unknown, unknown] | undefined => {
  if (!/^[A-Za-z0-9_-]{1,300}$/.test(cursor)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(fromBase64Url(cursor) ?? "null")
  } catch {
    return undefined
  }
  return Array.isArray(parsed) && parsed.length === 2 ? [parsed[0], parsed[1]] : undefined
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/

/** Artifacts: base64url JSON `[createdAt (UTC, microseconds), id]` of the previous page's last artifact. */
export const encodeArtifactCursor = (createdAt: string, id: string): string => encodeCursorPair(createdAt, id)
export const decodeArtifactCursor = (cursor: string): readonly [string, string] | undefined => {
  const pair = decodeCursorPair(cursor)
  if (pair === undefined) return undefined
  const [time, id] = pair
  if (typeof time !== "string" || typeof id !== "string" || !CURSOR_TIME.test(time) || !ID_PATTERN.test(id)) return undefined
  // A real calendar time (Postgres refuses 2026-02-30).
  const date = new Date(`${time.slice(0, 23)}Z`)
  return Number.isNaN(date.getTime()) || date.toISOString().slice(0, 23) !== time.slice(0, 23) ? undefined : [time, id]
}

/** A session view's messages: base64url JSON `[sequence, messageId]` of the oldest message of the previous page. */
export const encodeMessageCursor = (sequence: number, messageId: string): string => encodeCursorPair(sequence, messageId)
export const decodeMessageCursor = (cursor: string): readonly [number, string] | undefined => {
  const pair = decodeCursorPair(cursor)
  if (pair === undefined) return undefined
  const [sequence, messageId] = pair
  return typeof sequence === "number" && Number.isSafeInteger(sequence) && sequence >= 0 && typeof messageId === "string" && messageId.length <= 200 &&
      textProblem(messageId) === undefined && encodeMessageCursor(sequence, messageId) === cursor
    ? [sequence, messageId]
    : undefined
}

/** A query cursor: a 400 unless `decode` takes it. */
export const cursorOf = (decode: (cursor: string) => unknown) =>
  Schema.String.annotate({ expected: "a cursor from a previous page's nextCursor" }).check(
    Schema.isMaxLength(300),
    Schema.makeFilter<string>((cursor) => decode(cursor) !== undefined || "not a cursor this list returned")
  )

export const SessionCursor = cursorOf(decodeSessionCursor)
export const ArtifactCursor = cursorOf(decodeArtifactCursor)
export const MessageCursor = cursorOf(decodeMessageCursor)

/** A query time (`since`, `until`): ISO 8601, at most 40 characters. */
export const IsoTime = Schema.String.annotate({ expected: "an ISO 8601 time" }).check(
  Schema.makeFilter<string>((value) =>
    (value.length <= 40 && /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value))) || "not an ISO 8601 time")
)
