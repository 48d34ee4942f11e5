import { decodeSessionCursor, encodeSessionCursor, normalizeTags, NotFound, RECENT_WINDOW_MS, type SmartFilterId, type Thread } from "@cowork/domain"
import { Clock, Effect } from "effect"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { MAX_TAG_LIST, SMART_FILTERS, type Threads } from "./Threads.ts"

/** The memory twin of `PgThreads`. */
export const makeThreadsMemory = (db: MemoryTables): Threads["Service"] => {
  const threadOf = (orgId: string, sessionId: string): Thread | undefined => {
    const session = db.sessions.get(sessionId)
    const projection = db.projections.get(sessionId)
    if (session === undefined || projection === undefined || session.orgId !== orgId) return undefined
    return {
      id: session.id,
      title: session.title,
      status: projection.status,
      profileName: session.profileName,
      tags: [...(session.tags ?? [])],
      createdBy: session.createdBy ?? null,
      lastSequence: projection.lastSequence,
      createdAt: new Date(session.createdAt).toISOString(),
      updatedAt: new Date(projection.updatedAt).toISOString()
    }
  }
  const newest = (a: Thread, b: Thread) =>
    a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0
  const failed = (sessionId: string) =>
    db.commands.some((c) => c.sessionId === sessionId && c.kind === "prompt" && (c.status === "failed" || c.status === "dead"))
  const matches = (filter: SmartFilterId, thread: Thread, viewer: string, now: number): boolean => {
    switch (filter) {
      case "running":
        return thread.status === "running"
      case "failed":
        return failed(thread.id)
      case "mine":
        return thread.createdBy === viewer
      case "recent":
        return Date.parse(thread.updatedAt) >= now - RECENT_WINDOW_MS
    }
  }
  const orgThreads = (orgId: string) =>
    [...db.sessions.keys()].map((id) => threadOf(orgId, id)).filter((t): t is Thread => t !== undefined)

  return {
    list: (orgId, viewer, query) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const q = query.q === undefined || query.q === "" ? undefined : query.q.toLowerCase()
        const matching = orgThreads(orgId)
          .filter((t) =>
            (query.filter === undefined || matches(query.filter, t, viewer, now)) &&
            (query.tag === undefined || t.tags.includes(query.tag)) &&
            (q === undefined || t.title.toLowerCase().includes(q))
          )
          .sort(newest)
        const cursorId = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor)
        const after = cursorId === undefined ? undefined : threadOf(orgId, cursorId)
        const rest = cursorId === undefined ? matching : after === undefined ? [] : matching.filter((t) => newest(after, t) < 0)
        const page = rest.slice(0, query.limit)
        const last = page.at(-1)
        return {
          threads: page,
          nextCursor: rest.length > query.limit && last !== undefined ? encodeSessionCursor(last.id) : null,
          totalEstimate: matching.length
        }
      }),
    tags: (orgId) =>
      Effect.sync(() => {
        const counts = new Map<string, number>()
        for (const thread of orgThreads(orgId)) for (const tag of thread.tags) counts.set(tag, (counts.get(tag) ?? 0) + 1)
        return [...counts].map(([tag, count]) => ({ tag, count }))
          .sort((a, b) => b.count - a.count || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0))
          .slice(0, MAX_TAG_LIST)
      }),
    smartFilters: (orgId, viewer) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const threads = orgThreads(orgId)
        return SMART_FILTERS.map((filter) => ({ ...filter, count: threads.filter((t) => matches(filter.id, t, viewer, now)).length }))
      }),
    update: (orgId, sessionId, input) =>
      Effect.suspend(() => {
        const session = db.sessions.get(sessionId)
        if (session === undefined || session.orgId !== orgId) return Effect.fail(new NotFound({ message: `session ${sessionId} not found` }))
        if (input.title !== undefined) session.title = input.title
        if (input.tags !== undefined) session.tags = normalizeTags(input.tags)
        return Effect.succeed(threadOf(orgId, sessionId)!)
      })
  }
}
