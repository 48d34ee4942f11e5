import { type AuditDetails, type AuditEvent, decodeAuditCursor, encodeAuditCursor } from "@cowork/domain"
import { Clock, Context, Effect, Layer } from "effect"

export interface AuditRecord {
  readonly orgId: string
  readonly actor: string
  readonly action: string
  readonly target?: string | null | undefined
  readonly requestId?: string | null | undefined
  readonly details?: AuditDetails | undefined
}

export interface AuditQuery {
  readonly limit: number
  readonly cursor?: string | undefined
  readonly actor?: string | undefined
  readonly action?: string | undefined
  /** ISO times, inclusive `since`, exclusive `until`. */
  readonly since?: string | undefined
  readonly until?: string | undefined
}

/** The append-only audit log, newest first, keyset-paginated; an org sees only its own rows. */
export class Audit extends Context.Service<Audit, {
  readonly record: (event: AuditRecord) => Effect.Effect<void>
  /** `undefined` cursor: the newest page. A cursor that is not one of ours reads as the end (empty page). */
  readonly list: (orgId: string, query: AuditQuery) => Effect.Effect<{ readonly events: ReadonlyArray<AuditEvent>; readonly nextCursor: string | null }>
}>()("cowork/Audit") {
  static readonly layerMemory = Layer.sync(Audit, () => makeMemoryAudit())
}

const makeMemoryAudit = (): Audit["Service"] => {
  const events: Array<AuditEvent> = []
  let sequence = 0
  return Audit.of({
    record: (event) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        events.push({
          id: String(++sequence),
          orgId: event.orgId,
          at: new Date(now).toISOString(),
          actor: event.actor,
          action: event.action,
          target: event.target ?? null,
          requestId: event.requestId ?? null,
          details: event.details ?? {}
        })
      }),
    list: (orgId, query) =>
      Effect.sync(() => {
        const before = query.cursor === undefined ? undefined : decodeAuditCursor(query.cursor)
        if (query.cursor !== undefined && before === undefined) return { events: [], nextCursor: null }
        const matching = events
          .filter((event) =>
            event.orgId === orgId &&
            (before === undefined || Number(event.id) < Number(before)) &&
            (query.actor === undefined || event.actor === query.actor) &&
            (query.action === undefined || event.action === query.action) &&
            (query.since === undefined || Date.parse(event.at) >= Date.parse(query.since)) &&
            (query.until === undefined || Date.parse(event.at) < Date.parse(query.until))
          )
          .reverse()
        const page = matching.slice(0, query.limit)
        return {
          events: page,
          nextCursor: matching.length > query.limit ? encodeAuditCursor(page[page.length - 1]!.id) : null
        }
      })
  })
}
