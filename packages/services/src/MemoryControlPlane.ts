import {
  type CommandKind,
  type CommandStatus,
  type EventDraft,
  type Lease,
  makeId,
  newEventId,
  projectEvents,
  type RunnableCommand,
  type SessionEvent,
  type SessionStatus,
  StaleOwner,
  type WorkerHeartbeat
} from "@cowork/domain"
import { Clock, Context, Effect, Layer, Option, PubSub, Stream } from "effect"
import { type CommandSignal, ChangeFeed, type SessionChanged } from "./ChangeFeed.ts"
import { CommandQueue } from "./CommandQueue.ts"
import { type CommandCompletion, EventLog } from "./EventLog.ts"
import { type HeartbeatInput, Heartbeats } from "./Heartbeats.ts"
import { LeaseStore, type ReapOptions } from "./LeaseStore.ts"

export interface MemoryCommand {
  readonly id: string
  readonly sessionId: string
  readonly kind: CommandKind
  readonly payload: { readonly text?: string }
  status: CommandStatus
  attemptCount: number
  claimedEpoch: number | null
  lastError: string | null
  /** Epoch millis by the Effect `Clock`. */
  readonly createdAt: number
}

export interface MemoryMessage {
  readonly messageId: string
  readonly role: "user" | "assistant"
  readonly text: string
  readonly commandId: string | null
  readonly attempt: number | null
  readonly sequence: number
}

interface MemorySession {
  readonly id: string
  readonly orgId: string
  workerId: string | null
  epoch: number
  /** Epoch millis by the Effect `Clock`; `-Infinity` for a lease nobody holds. */
  expiresAt: number
  status: SessionStatus
  lastSequence: number
  earliestSequence: number
  events: Array<SessionEvent>
  messages: Map<string, MemoryMessage>
}

/**
 * The control plane's tables in memory, for tests of the worker pipeline without Postgres. Every operation is one
 * synchronous step after reading the Effect `Clock` (so `TestClock` drives lease expiry), which makes it as atomic
 * as the single-statement Postgres writes it mirrors: same fencing, same `StaleOwner` refusals.
 */
export class MemoryControlPlane extends Context.Service<MemoryControlPlane, {
  /** Creates a session (its projection, an unowned lease and `session.created`), as the web role does. */
  readonly createSession: (sessionId?: string, orgId?: string) => Effect.Effect<string>
  /** Queues a command (with `prompt.submitted` for prompts) and signals workers; returns the command id. */
  readonly enqueue: (sessionId: string, kind: CommandKind, text?: string) => Effect.Effect<string>
  /** Cancels pending commands, marks the session aborted, queues an `abort` command and signals its owner. */
  readonly abort: (sessionId: string) => Effect.Effect<string>
  readonly commands: (sessionId: string) => Effect.Effect<ReadonlyArray<MemoryCommand>>
  readonly events: (sessionId: string) => Effect.Effect<ReadonlyArray<SessionEvent>>
  readonly messages: (sessionId: string) => Effect.Effect<ReadonlyArray<MemoryMessage>>
  readonly status: (sessionId: string) => Effect.Effect<SessionStatus>
  readonly lease: (sessionId: string) => Effect.Effect<{ readonly workerId: string | null; readonly epoch: number; readonly expiresAt: number }>
  readonly leaseStore: LeaseStore["Service"]
  readonly commandQueue: CommandQueue["Service"]
  readonly eventLog: EventLog["Service"]
  readonly heartbeats: Heartbeats["Service"]
  readonly changeFeed: ChangeFeed["Service"]
}>()("cowork/MemoryControlPlane") {
  /** The state alone. */
  static readonly layerState: Layer.Layer<MemoryControlPlane> = Layer.effect(MemoryControlPlane, Effect.suspend(() => make))

  /** The state plus `LeaseStore`, `CommandQueue`, `EventLog`, `Heartbeats` and `ChangeFeed` over it. */
  static readonly layer: Layer.Layer<MemoryControlPlane | LeaseStore | CommandQueue | EventLog | Heartbeats | ChangeFeed> =
    Layer.mergeAll(
      Layer.effect(LeaseStore, Effect.map(Effect.service(MemoryControlPlane), (plane) => plane.leaseStore)),
      Layer.effect(CommandQueue, Effect.map(Effect.service(MemoryControlPlane), (plane) => plane.commandQueue)),
      Layer.effect(EventLog, Effect.map(Effect.service(MemoryControlPlane), (plane) => plane.eventLog)),
      Layer.effect(Heartbeats, Effect.map(Effect.service(MemoryControlPlane), (plane) => plane.heartbeats)),
      Layer.effect(ChangeFeed, Effect.map(Effect.service(MemoryControlPlane), (plane) => plane.changeFeed))
    ).pipe(Layer.provideMerge(MemoryControlPlane.layerState))
}

const make = Effect.gen(function*() {
  const sessions = new Map<string, MemorySession>()
  const commands: Array<MemoryCommand> = []
  const heartbeatRows = new Map<string, HeartbeatInput & { lastSeenAt: number }>()
  const commandSignals = yield* PubSub.unbounded<CommandSignal>()
  const sessionChanges = yield* PubSub.unbounded<SessionChanged>()

  const sessionOf = (sessionId: string): MemorySession => {
    const session = sessions.get(sessionId)
    if (session === undefined) throw new Error(`memory control plane: no session ${sessionId}`)
    return session
  }
  const isLive = (session: MemorySession, lease: Lease, now: number) =>
    session.epoch === lease.epoch && session.workerId === lease.workerId && session.expiresAt > now
  const stale = (lease: Lease, operation: string) =>
    new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation })

  const writeEvents = (session: MemorySession, drafts: ReadonlyArray<EventDraft>, now: number) => {
    const delta = projectEvents(drafts)
    const first = session.lastSequence + 1
    drafts.forEach((draft, index) => {
      session.events.push({
        sequence: first + index,
        type: draft.type,
        eventId: newEventId(),
        payload: draft.payload,
        createdAt: new Date(now).toISOString()
      })
    })
    session.lastSequence += drafts.length
    if (delta.status !== undefined && session.status !== "aborted" && !(delta.status === "queued" && session.status !== "idle")) {
      session.status = delta.status
    }
    for (const drop of delta.dropAttempts) {
      for (const [id, message] of session.messages) {
        if (message.commandId === drop.commandId && message.attempt === drop.attempt) session.messages.delete(id)
      }
    }
    for (const message of delta.messages) {
      session.messages.set(message.messageId, {
        messageId: message.messageId,
        role: message.role,
        text: message.text,
        commandId: message.commandId,
        attempt: message.attempt,
        sequence: first + message.draftIndex
      })
    }
    PubSub.publishUnsafe(sessionChanges, { orgId: session.orgId, sessionId: session.id, lastSequence: session.lastSequence })
    return session.lastSequence
  }

  /** Running commands of a session taken over go back to pending, or die once `maxAttempts` were abandoned. */
  const recoverRunning = (sessionId: string, maxAttempts: number) => {
    let requeued = 0
    let dead = 0
    for (const command of commands) {
      if (command.sessionId !== sessionId || command.status !== "running") continue
      command.attemptCount += 1
      command.claimedEpoch = null
      command.lastError = `attempt ${command.attemptCount} abandoned`
      if (command.attemptCount >= maxAttempts) {
        command.status = "dead"
        dead++
      } else {
        command.status = "pending"
        requeued++
      }
    }
    return { requeued, dead }
  }

  const hasCommand = (sessionId: string, statuses: ReadonlyArray<CommandStatus>) =>
    commands.some((command) => command.sessionId === sessionId && statuses.includes(command.status))

  const leaseStore = LeaseStore.of({
    claim: (workerId, limit, ttlMs, maxAttempts) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const blocked = ["draining", "paused", "revoked"].includes(heartbeatRows.get(workerId)?.status ?? "")
        const claimed: Array<Lease> = []
        if (blocked) return claimed
        for (const session of sessions.values()) {
          if (claimed.length >= limit) break
          if (session.expiresAt > now || !hasCommand(session.id, ["pending", "running"])) continue
          session.workerId = workerId
          session.epoch += 1
          session.expiresAt = now + ttlMs
          recoverRunning(session.id, maxAttempts)
          claimed.push({ sessionId: session.id, workerId, epoch: session.epoch })
        }
        return claimed
      }),
    renew: (lease, ttlMs) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const session = sessionOf(lease.sessionId)
        if (!isLive(session, lease, now)) return Effect.fail(stale(lease, "renew"))
        session.expiresAt = now + ttlMs
        return Effect.void
      }),
    releaseIfIdle: (lease) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const session = sessionOf(lease.sessionId)
        if (!isLive(session, lease, now)) return Effect.fail(stale(lease, "release"))
        if (hasCommand(session.id, ["pending"])) return Effect.succeed(false)
        session.workerId = null
        session.expiresAt = -Infinity
        return Effect.succeed(true)
      }),
    expire: (lease) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const session = sessionOf(lease.sessionId)
        if (!isLive(session, lease, now)) return Effect.fail(stale(lease, "expire"))
        session.expiresAt = now
        return Effect.void
      }),
    reapExpired: (options: ReapOptions) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const expired = [...sessions.values()]
          .filter((session) => session.workerId !== null && session.expiresAt <= now)
          .sort((a, b) => a.expiresAt - b.expiresAt)
        let requeued = 0
        let dead = 0
        const batch = expired.slice(0, options.drainCap)
        for (const session of batch) {
          session.workerId = null
          session.epoch += 1
          session.expiresAt = -Infinity
          const recovered = recoverRunning(session.id, options.maxAttempts)
          requeued += recovered.requeued
          dead += recovered.dead
          if (recovered.requeued > 0) PubSub.publishUnsafe<CommandSignal>(commandSignals, { kind: "prompt", sessionId: session.id })
        }
        return { reaped: batch.length, capHit: batch.length >= options.drainCap && batch.length > 0, requeued, dead }
      })
  })

  const commandQueue = CommandQueue.of({
    next: (lease) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const session = sessionOf(lease.sessionId)
        if (!isLive(session, lease, now)) return Effect.fail(stale(lease, "next"))
        const command = commands.find((c) => c.sessionId === lease.sessionId && c.status === "pending")
        if (command === undefined) return Effect.succeed(Option.none<RunnableCommand>())
        command.status = "running"
        command.claimedEpoch = lease.epoch
        return Effect.succeed(Option.some<RunnableCommand>({
          id: command.id,
          sessionId: command.sessionId,
          kind: command.kind,
          payload: command.payload,
          attempt: command.attemptCount + 1,
          abandonedAttempts: command.attemptCount
        }))
      }),
    noteError: (lease, message) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const session = sessionOf(lease.sessionId)
        if (!isLive(session, lease, now)) return Effect.fail(stale(lease, "note_error"))
        const command = commands.find((c) => c.sessionId === lease.sessionId && c.status === "pending")
        if (command === undefined) return Effect.succeed(Option.none<string>())
        command.lastError = message
        return Effect.succeed(Option.some<string>(command.id))
      }),
    backlog: (limit) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const pending = commands.filter((c) => c.status === "pending")
        const oldest = pending[0]
        return {
          depthEstimate: Math.min(pending.length, limit),
          capped: pending.length >= limit,
          oldestAgeMs: oldest === undefined ? 0 : Math.max(0, now - oldest.createdAt)
        }
      }),
    status: (commandId) =>
      Effect.sync(() => {
        const command = commands.find((c) => c.id === commandId)
        return command === undefined
          ? Option.none()
          : Option.some({ status: command.status, attemptCount: command.attemptCount })
      })
  })

  const eventLog = EventLog.of({
    append: (lease: Lease, drafts: ReadonlyArray<EventDraft>, completion?: CommandCompletion) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const session = sessionOf(lease.sessionId)
        const command = completion === undefined ? undefined : commands.find((c) => c.id === completion.commandId)
        const completable = completion === undefined ||
          (command !== undefined && command.sessionId === session.id && command.status === "running" &&
            command.claimedEpoch === lease.epoch)
        if (!isLive(session, lease, now) || !completable) {
          return Effect.fail(stale(lease, completion === undefined ? "append" : `append+${completion.outcome}`))
        }
        const last = writeEvents(session, drafts, now)
        if (command !== undefined && completion !== undefined) {
          command.status = completion.outcome
          command.lastError = completion.error ?? null
        }
        return Effect.succeed(last)
      }),
    read: (sessionId, after, limit) =>
      Effect.sync(() => sessionOf(sessionId).events.filter((event) => event.sequence > after).slice(0, limit)),
    bounds: (sessionId) =>
      Effect.sync(() => {
        const session = sessionOf(sessionId)
        return { earliestSequence: session.earliestSequence, latestSequence: session.lastSequence }
      }),
    latestSequences: (sessionIds) =>
      Effect.sync(() => {
        const tips = new Map<string, number>()
        for (const sessionId of sessionIds) {
          const session = sessions.get(sessionId)
          if (session !== undefined) tips.set(sessionId, session.lastSequence)
        }
        return tips
      }),
    prune: (sessionId, before) =>
      Effect.sync(() => {
        const session = sessionOf(sessionId)
        session.events = session.events.filter((event) => event.sequence >= before)
        session.earliestSequence = Math.max(session.earliestSequence, Math.min(before, session.lastSequence + 1))
      })
  })

  const heartbeats = Heartbeats.of({
    beat: (input) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const previous = heartbeatRows.get(input.workerId)?.status
        const status = previous === "paused" || previous === "revoked" ? previous : input.status
        heartbeatRows.set(input.workerId, { ...input, status, lastSeenAt: now })
      }),
    list: (freshWithinMs) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        [...heartbeatRows.values()].map((row): WorkerHeartbeat => ({
          workerId: row.workerId,
          role: row.role,
          poolId: row.poolId,
          status: row.status,
          version: row.version,
          region: row.region,
          capabilities: row.capabilities,
          currentLoad: row.currentLoad,
          activeWorkIds: row.activeWorkIds,
          lastSeenAt: new Date(row.lastSeenAt).toISOString(),
          ageMs: now - row.lastSeenAt,
          fresh: now - row.lastSeenAt < freshWithinMs
        })))
  })

  const changeFeed = ChangeFeed.of({
    sessionChanges: Effect.map(PubSub.subscribe(sessionChanges), Stream.fromSubscription),
    commandSignals: Effect.map(PubSub.subscribe(commandSignals), Stream.fromSubscription),
    notifyCommand: (signal) => Effect.asVoid(PubSub.publish(commandSignals, signal)),
    listeners: Effect.succeed([])
  })

  const createSession = (sessionId?: string, orgId = "org_memory") =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const id = sessionId ?? makeId("ses")
      const session: MemorySession = {
        id,
        orgId,
        workerId: null,
        epoch: 0,
        expiresAt: -Infinity,
        status: "idle",
        lastSequence: 0,
        earliestSequence: 1,
        events: [],
        messages: new Map()
      }
      sessions.set(id, session)
      writeEvents(session, [{ type: "session.created", payload: { title: "memory" } }], now)
      return id
    })

  const enqueue = (sessionId: string, kind: CommandKind, text?: string) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const session = sessionOf(sessionId)
      const id = makeId("cmd")
      commands.push({
        id,
        sessionId,
        kind,
        payload: text === undefined ? {} : { text },
        status: "pending",
        attemptCount: 0,
        claimedEpoch: null,
        lastError: null,
        createdAt: now
      })
      if (kind === "prompt") {
        writeEvents(session, [{ type: "prompt.submitted", payload: { commandId: id, text: text ?? "" } }], now)
      }
      PubSub.publishUnsafe<CommandSignal>(commandSignals, { kind, sessionId })
      return id
    })

  const abort = (sessionId: string) =>
    Effect.flatMap(
      Effect.sync(() => {
        for (const command of commands) {
          if (command.sessionId === sessionId && command.status === "pending") command.status = "cancelled"
        }
        sessionOf(sessionId).status = "aborted"
      }),
      () => enqueue(sessionId, "abort")
    )

  return MemoryControlPlane.of({
    createSession,
    enqueue,
    abort,
    commands: (sessionId) => Effect.sync(() => commands.filter((c) => c.sessionId === sessionId).map((c) => ({ ...c }))),
    events: (sessionId) => Effect.sync(() => [...sessionOf(sessionId).events]),
    messages: (sessionId) =>
      Effect.sync(() => [...sessionOf(sessionId).messages.values()].sort((a, b) => a.sequence - b.sequence)),
    status: (sessionId) => Effect.sync(() => sessionOf(sessionId).status),
    lease: (sessionId) =>
      Effect.sync(() => {
        const session = sessionOf(sessionId)
        return { workerId: session.workerId, epoch: session.epoch, expiresAt: session.expiresAt }
      }),
    leaseStore,
    commandQueue,
    eventLog,
    heartbeats,
    changeFeed
  })
})
