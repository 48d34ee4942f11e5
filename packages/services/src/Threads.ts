import type { NotFound, SmartFilter, SmartFilterId, Thread } from "@cowork/domain"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { makeThreadsMemory } from "./ThreadsMemory.ts"

export interface ThreadsQuery {
  readonly limit: number
  readonly cursor?: string | undefined
  readonly filter?: SmartFilterId | undefined
  readonly tag?: string | undefined
  /** Case-insensitive substring of the title. */
  readonly q?: string | undefined
}

export interface ThreadPage {
  readonly threads: ReadonlyArray<Thread>
  readonly nextCursor: string | null
  readonly totalEstimate: number
}

/** Most tags `tags` answers. */
export const MAX_TAG_LIST = 200

/** The smart filters, in the order clients show them (counts filled in by the store). */
export const SMART_FILTERS: ReadonlyArray<Omit<SmartFilter, "count">> = [
  { id: "running", title: "Running", description: "Sessions with a turn running now", query: "filter=running" },
  { id: "failed", title: "Failed", description: "Sessions with a prompt that failed or went dead", query: "filter=failed" },
  { id: "mine", title: "Mine", description: "Sessions you started", query: "filter=mine" },
  { id: "recent", title: "Recent", description: "Sessions active in the last 24 hours", query: "filter=recent" }
]

/**
 * The thread list views over an org's sessions: one thread per session, newest first, keyset-paginated like the
 * session list; the tags in use; the smart filters with their counts; and renaming / re-tagging a session. `viewer`
 * is the caller's identity (`account:<id>` or `token:<id>`), which `mine` compares with the session's creator.
 * Another org's session is `NotFound`.
 */
export class Threads extends Context.Service<Threads, {
  readonly list: (orgId: string, viewer: string, query: ThreadsQuery) => Effect.Effect<ThreadPage>
  readonly tags: (orgId: string) => Effect.Effect<ReadonlyArray<{ readonly tag: string; readonly count: number }>>
  readonly smartFilters: (orgId: string, viewer: string) => Effect.Effect<ReadonlyArray<SmartFilter>>
  readonly update: (
    orgId: string,
    sessionId: string,
    input: { readonly title?: string | undefined; readonly tags?: ReadonlyArray<string> | undefined }
  ) => Effect.Effect<Thread, NotFound>
}>()("cowork/Threads") {
  static readonly layerMemory: Layer.Layer<Threads, never, MemoryDatabase> = Layer.effect(
    Threads,
    Effect.map(Effect.service(MemoryDatabase), makeThreadsMemory)
  )
}
