import { decodeUsageCursor, encodeUsageCursor, type UsageEvent, type UsageSummary } from "@cowork/domain"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"

export interface UsageWindow {
  /** ISO times: inclusive `since`, exclusive `until`. */
  readonly since: string
  readonly until: string
}

/** Usage read from what the control plane already records (no write per request): prompts, sessions, artifacts. */
export class Usage extends Context.Service<Usage, {
  readonly summary: (orgId: string, window: UsageWindow) => Effect.Effect<UsageSummary>
  /** Newest first; a cursor that is not one of ours reads as the end. */
  readonly events: (orgId: string, page: { readonly limit: number; readonly cursor?: string | undefined }) => Effect.Effect<{
    readonly events: ReadonlyArray<UsageEvent>
    readonly nextCursor: string | null
  }>
}>()("cowork/Usage") {
  static readonly layerMemory: Layer.Layer<Usage, never, MemoryDatabase> = Layer.effect(
    Usage,
    Effect.map(Effect.service(MemoryDatabase), (db) => {
      const iso = (ms: number) => new Date(ms).toISOString()
      return Usage.of({
        summary: (orgId, window) =>
          Effect.sync(() => {
            const since = Date.parse(window.since)
            const until = Date.parse(window.until)
            const inWindow = (at: number) => at >= since && at < until
            const artifacts = [...db.artifacts.values()].filter((a) => a.orgId === orgId && inWindow(a.createdAt))
            return {
              orgId,
              since: iso(since),
              until: iso(until),
              prompts: db.commands.filter((c) => c.orgId === orgId && c.kind === "prompt" && inWindow(c.createdAt)).length,
              sessionsCreated: [...db.sessions.values()].filter((s) => s.orgId === orgId && inWindow(s.createdAt)).length,
              artifactUploads: artifacts.length,
              artifactBytes: artifacts.reduce((sum, a) => sum + a.sizeBytes, 0),
              runtimeSeconds: null,
              modelTokens: null
            }
          }),
        events: (orgId, page) =>
          Effect.sync(() => {
            const after = page.cursor === undefined ? undefined : decodeUsageCursor(page.cursor)
            if (page.cursor !== undefined && after === undefined) return { events: [], nextCursor: null }
            const all: Array<UsageEvent> = [
              ...db.commands.filter((c) => c.orgId === orgId && c.kind === "prompt").map((c): UsageEvent => ({
                id: c.id,
                kind: "prompt",
                sessionId: c.sessionId,
                at: iso(c.createdAt),
                quantity: 1,
                unit: "prompts"
              })),
              ...[...db.artifacts.values()].filter((a) => a.orgId === orgId).map((a): UsageEvent => ({
                id: a.id,
                kind: "artifact",
                sessionId: a.sessionId,
                at: iso(a.createdAt),
                quantity: a.sizeBytes,
                unit: "bytes"
              }))
            ]
            const newestFirst = (a: UsageEvent, b: UsageEvent) => b.at.localeCompare(a.at) || b.id.localeCompare(a.id)
            const before = (e: UsageEvent) =>
              after === undefined || e.at < after[0] || (e.at === after[0] && e.id < after[1])
            const matching = all.sort(newestFirst).filter(before)
            const events = matching.slice(0, page.limit)
            const last = events[events.length - 1]
            return { events, nextCursor: matching.length > page.limit && last !== undefined ? encodeUsageCursor(last.at, last.id) : null }
          })
      })
    })
  )
}
