import { Schema } from "effect"
import { decodeCursorPair, encodeCursorPair } from "./Input.ts"

/** What an org used in a window: prompts sent, sessions created, artifact uploads and their bytes. */
export const UsageSummary = Schema.Struct({
  orgId: Schema.String,
  since: Schema.String,
  until: Schema.String,
  prompts: Schema.Number,
  sessionsCreated: Schema.Number,
  artifactUploads: Schema.Number,
  artifactBytes: Schema.Number,
  /** Runtime seconds and model tokens are not metered yet: always null. */
  runtimeSeconds: Schema.Null,
  modelTokens: Schema.Null
})
export type UsageSummary = typeof UsageSummary.Type

export const UsageEvent = Schema.Struct({
  id: Schema.String,
  kind: Schema.Literals(["prompt", "artifact"]),
  sessionId: Schema.String,
  at: Schema.String,
  quantity: Schema.Number,
  unit: Schema.Literals(["prompts", "bytes"])
})
export type UsageEvent = typeof UsageEvent.Type

export const UsageEventPage = Schema.Struct({ events: Schema.Array(UsageEvent), nextCursor: Schema.NullOr(Schema.String) })

/** Keyset cursor over usage events (newest first): `[at, id]` of the last event, base64url JSON. */
export const encodeUsageCursor = (at: string, id: string): string => encodeCursorPair(at, id)
export const decodeUsageCursor = (cursor: string): readonly [string, string] | undefined => {
  const pair = decodeCursorPair(cursor)
  if (pair === undefined) return undefined
  const [at, id] = pair
  return typeof at === "string" && typeof id === "string" && !Number.isNaN(Date.parse(at)) && /^[A-Za-z0-9._-]{1,100}$/.test(id)
    ? [new Date(at).toISOString(), id]
    : undefined
}
