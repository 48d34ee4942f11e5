import type { CommandKind } from "@cowork/domain"
import { EventLog, MemoryDatabase, SessionStore } from "@cowork/services"
import { Effect } from "effect"

/** The org memory fixtures create sessions in. */
const MEMORY_ORG = "org_memory"

/**
 * Test fixtures over the memory layers: sessions and commands made through `SessionStore` (as the web role makes
 * them), and reads of the shared `MemoryDatabase` for what no service exposes (command rows, the lease row).
 */
export const memoryPlane = Effect.gen(function*() {
  const db = yield* MemoryDatabase
  const sessions = yield* SessionStore
  const log = yield* EventLog

  const orgOf = (sessionId: string) => db.sessions.get(sessionId)?.orgId ?? MEMORY_ORG

  return {
    createSession: (orgId: string = MEMORY_ORG) => Effect.map(sessions.create(orgId, { title: "memory" }), (s) => s.id),
    /** Queues a prompt (the web role's `POST /prompt`) or an abort; returns the command id. */
    enqueue: (sessionId: string, kind: CommandKind, text = "") =>
      Effect.map(
        kind === "abort" ? sessions.abort(orgOf(sessionId), sessionId) : sessions.prompt(orgOf(sessionId), sessionId, { text }),
        (enqueued) => enqueued.commandId
      ).pipe(Effect.orDie),
    abort: (sessionId: string) => Effect.map(sessions.abort(orgOf(sessionId), sessionId), (e) => e.commandId).pipe(Effect.orDie),
    commands: (sessionId: string) =>
      Effect.sync(() => db.commands.filter((c) => c.sessionId === sessionId).map((c) => ({ ...c }))),
    events: (sessionId: string) => log.read(sessionId, 0, Number.MAX_SAFE_INTEGER),
    messages: (sessionId: string) =>
      Effect.map(sessions.view(orgOf(sessionId), sessionId), (view) => view.messages).pipe(Effect.orDie),
    status: (sessionId: string) => Effect.map(sessions.get(orgOf(sessionId), sessionId), (s) => s.status).pipe(Effect.orDie),
    lease: (sessionId: string) =>
      Effect.sync(() => {
        const lease = db.leases.get(sessionId)!
        return { workerId: lease.workerId, epoch: lease.epoch, expiresAt: lease.expiresAt, checkpointVersion: lease.checkpointVersion }
      })
  }
})
