import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Id, PageLimit, SessionCursor, Text } from "./Input.ts"
import { MAX_TITLE_LENGTH, SessionStatus } from "./Session.ts"

/**
 * Threads: the list views clients (the workbench, chat gateways) show over the org's sessions — one thread per
 * session, with its tags and who started it — the tags in use, and the saved "smart filters" with their counts.
 */

/** A tag: 1-40 of `a-z 0-9 . _ : -` starting alphanumeric, stored lower-case; at most 20 per session. */
export const TAG_PATTERN = /^[a-z0-9][a-z0-9._:-]{0,39}$/
export const MAX_TAGS = 20
export const Tag = Schema.String.annotate({ expected: "a tag (1-40 of a-z 0-9 . _ : -, lower-case)" }).check(Schema.isPattern(TAG_PATTERN))
export const Tags = Schema.Array(Tag).check(Schema.isMaxLength(MAX_TAGS))

/** Distinct tags in first-seen order. */
export const normalizeTags = (tags: ReadonlyArray<string>): ReadonlyArray<string> => [...new Set(tags)]

export const SMART_FILTER_IDS = ["running", "failed", "mine", "recent"] as const
export const SmartFilterId = Schema.Literals(SMART_FILTER_IDS)
export type SmartFilterId = typeof SmartFilterId.Type

/** `recent`: sessions whose log changed within this window. */
export const RECENT_WINDOW_MS = 24 * 60 * 60 * 1000

export const Thread = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  status: SessionStatus,
  profileName: Schema.String,
  tags: Schema.Array(Schema.String),
  /** `account:<id>` (browser session) or `token:<id>` (API token) that created the session; null when unknown. */
  createdBy: Schema.NullOr(Schema.String),
  lastSequence: Schema.Number,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type Thread = typeof Thread.Type

export const ThreadPage = Schema.Struct({
  threads: Schema.Array(Thread),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})

export const TagCount = Schema.Struct({ tag: Schema.String, count: Schema.Number })
export const TagList = Schema.Struct({ tags: Schema.Array(TagCount) })

export const SmartFilter = Schema.Struct({
  id: SmartFilterId,
  title: Schema.String,
  description: Schema.String,
  /** The query string of `GET /api/threads` that lists it (`filter=<id>`). */
  query: Schema.String,
  count: Schema.Number
})
export type SmartFilter = typeof SmartFilter.Type
export const SmartFilterList = Schema.Struct({ filters: Schema.Array(SmartFilter) })

export const ThreadsQuery = {
  limit: Schema.optional(PageLimit(100)),
  cursor: Schema.optional(SessionCursor),
  filter: Schema.optional(SmartFilterId),
  tag: Schema.optional(Tag),
  q: Schema.optional(Text(200))
}

export const UpdateSessionBody = Schema.Struct({
  title: Schema.optional(Text(MAX_TITLE_LENGTH)),
  /** Replaces the session's tags. */
  tags: Schema.optional(Tags)
})

export class ThreadsApi extends HttpApiGroup.make("threads")
  .add(
    HttpApiEndpoint.get("list", "/api/threads", {
      query: ThreadsQuery,
      success: ThreadPage,
      error: ApiError.BadRequest
    }).annotate(
      OpenApi.Description,
      "The org's sessions as threads, newest first, keyset-paginated (`nextCursor`); `filter` applies a smart filter (running, failed, mine, recent), `tag` one tag, `q` a title substring."
    ),
    HttpApiEndpoint.get("tags", "/api/threads/tags", {
      success: TagList
    }).annotate(OpenApi.Description, "The tags on the org's sessions with how many sessions carry each, most used first (at most 200)."),
    HttpApiEndpoint.get("smartFilters", "/api/threads/smart-filters", {
      success: SmartFilterList
    }).annotate(OpenApi.Description, "Saved filters over the org's sessions with their current counts: running, failed, mine, recent."),
    HttpApiEndpoint.patch("update", "/api/sessions/:id", {
      params: { id: Id },
      payload: UpdateSessionBody,
      success: Schema.Struct({ thread: Thread }),
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(OpenApi.Description, "Renames a session and/or replaces its tags; answers the thread.")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Threads", description: "Thread list views over sessions: list, tags, smart filters" }))
{}
