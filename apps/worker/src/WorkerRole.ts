import type { EventDraft, Lease, RunnableCommand, RuntimeFailure, StaleOwner } from "@cowork/domain"
import { Metrics, staleOwnerOperationLabel } from "@cowork/observability"
import {
  AgentRuntime,
  ChangeFeed,
  CommandQueue,
  EventLog,
  Heartbeats,
  LeaseStore,
  type RuntimeEvent,
  type RuntimeSession
} from "@cowork/services"
import { Cause, Clock, Deferred, Effect, Exit, FiberMap, Layer, Option, Queue, Ref, Scope, Stream, type Tracer } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import * as BacklogSampler from "./BacklogSampler.ts"
import { type CheckpointCursor, SessionCheckpoints } from "./SessionCheckpoints.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import * as WorkerLiveness from "./WorkerLiveness.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/** A session this worker holds: the lease epoch, and the abort request its current prompt turn races against. */
interface HeldSession {
  readonly epoch: number
  abort: Deferred.Deferred<void>
}

/** Checkpoints are pruned every this many saves (VERSIONS_PER_EPOCH is a multiple, so a lease's first save prunes). */
const PRUNE_EVERY = 4

type TurnOutcome =
  | { readonly _tag: "acked" }
  | { readonly _tag: "failed"; readonly message: string }
  | { readonly _tag: "cancelled" }

const draftOf = (event: RuntimeEvent, command: RunnableCommand): EventDraft => {
  const owner = { commandId: command.id, attempt: command.attempt }
  switch (event._tag) {
    case "AssistantDelta":
      return { type: "assistant.message", payload: { messageId: event.messageId, delta: event.delta, final: false }, ...owner }
    case "AssistantMessage":
      return { type: "assistant.message", payload: { messageId: event.messageId, text: event.text, final: true }, ...owner }
    case "ToolCall":
      return {
        type: "tool.call",
        payload: { callId: event.callId, tool: event.tool, input: event.input, output: event.output, commandId: command.id },
        ...owner
      }
    case "Status":
      return { type: "session.status", payload: { status: event.status, detail: event.detail, commandId: command.id }, ...owner }
    case "Error":
      return { type: "runtime.error", payload: { message: event.message, commandId: command.id }, ...owner }
  }
}

/** The enqueueing request's span, from the `traceparent` stored with the command, as a link for the run's span. */
const enqueuedBy = (command: RunnableCommand): ReadonlyArray<Tracer.SpanLink> => {
  if (command.traceParent === undefined) return []
  const span = HttpTraceContext.w3c(Headers.fromInput({ traceparent: command.traceParent }))
  return Option.isSome(span) ? [{ span: span.value, attributes: { "link.type": "enqueued-by" } }] : []
}

const isStaleOwner = (cause: Cause.Cause<unknown>) =>
  cause.reasons.some((reason) => Cause.isFailReason(reason) && (reason.error as { _tag?: unknown })._tag === "StaleOwner")

/**
 * The worker role: claims runnable sessions up to its capacity, runs each leased session's mailbox in order in a
 * fiber of its own (renewing the lease every TTL/3), reaps expired leases, beats its heartbeat, and drains on
 * shutdown. Every owner write is fenced by the lease; a refused one is counted and logged, never applied.
 */
const make = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const workerStatus = yield* WorkerStatus
  const metrics = yield* Metrics
  const leases = yield* LeaseStore
  const queue = yield* CommandQueue
  const log = yield* EventLog
  const heartbeats = yield* Heartbeats
  const changeFeed = yield* ChangeFeed
  const runtime = yield* AgentRuntime
  const checkpoints = yield* SessionCheckpoints
  const { workerId, leaseTtlMs: ttl } = config

  const held = new Map<string, HeldSession>()
  let draining = false
  const wake = yield* Queue.sliding<void>(1)
  const requestClaim = Queue.offer(wake, undefined).pipe(Effect.asVoid)

  const sessions = yield* FiberMap.make<string>()
  // Runtimes of sessions this worker released cleanly, keyed by session, with the checkpoint version they hold;
  // bounded (oldest closed first) and closed when the worker stops.
  const warm = new Map<string, { readonly runtime: RuntimeSession; readonly version: number; readonly scope: Scope.Closeable }>()
  const warmCapacity = config.warmRuntimes
  yield* Effect.addFinalizer(() =>
    Effect.forEach([...warm.values()], (entry) => Scope.close(entry.scope, Exit.void), { discard: true }).pipe(
      Effect.andThen(Effect.sync(() => warm.clear()))
    ))
  // Checkpoint pruning runs beside the session, off the ack path: one prune at a time per session, best effort
  // (the checkpoint store never deletes chunks young enough to belong to a save still in flight).
  const pruning = yield* FiberMap.make<string>()

  const refused = (error: StaleOwner, commandId: string | undefined) =>
    metrics.inc("open_cowork_cloud_worker_stale_owner_rejections_total", { operation: staleOwnerOperationLabel(error.operation) }).pipe(
      Effect.andThen(Effect.logWarning("stale owner: write refused, not applied")),
      Effect.annotateLogs({ session_id: error.sessionId, epoch: error.epoch, command_id: commandId, operation: error.operation })
    )
  const setActive = Effect.suspend(() => Ref.set(workerStatus.activeSessions, held.size))
  const fenced = <A>(write: Effect.Effect<A, StaleOwner>, commandId?: string) =>
    write.pipe(Effect.tapError((error) => refused(error, commandId)))

  const beat = (status: string) =>
    Effect.suspend(() =>
      heartbeats.beat({
        workerId,
        role: "worker",
        poolId: null,
        status,
        version: config.version,
        region: config.region,
        // `checkpoints` tells operators (runtime status) that this worker saves and restores session state.
        capabilities: checkpoints.enabled ? [...config.capabilities, "checkpoints"] : config.capabilities,
        currentLoad: held.size,
        activeWorkIds: [...held.keys()],
        credential: config.credential
      })
    ).pipe(
      Effect.andThen(Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.set(workerStatus.lastHeartbeatAt, now))),
      Effect.catchCause((cause) => Effect.logWarning("heartbeat failed", cause))
    )

  const runPrompt = Effect.fn("Worker.runPrompt")(function*(
    lease: Lease,
    command: RunnableCommand,
    session: HeldSession,
    openRuntime: Effect.Effect<RuntimeSession, RuntimeFailure>,
    checkpoint: CheckpointCursor
  ) {
    const owner = { commandId: command.id, attempt: command.attempt }
    const opening: Array<EventDraft> = []
    if (command.abandonedAttempts > 0) {
      opening.push({
        type: "command.retried",
        payload: { commandId: command.id, abandonedAttempt: command.abandonedAttempts, attempt: command.attempt },
        ...owner
      })
    }
    opening.push({ type: "session.status", payload: { status: "running", commandId: command.id }, ...owner })
    yield* fenced(log.append(lease, opening), command.id)

    // Adaptive batching: each append carries every runtime event that arrived while the previous one was in
    // flight, so a fast runtime costs one statement per burst and a slow one still streams event by event. The
    // burst that ends the turn is not appended here: it rides in the closing statement with the ack.
    let last: Array<EventDraft> = []
    const turn = Effect.gen(function*() {
      const runtimeSession = yield* openRuntime
      const events = yield* Stream.toQueue(
        runtimeSession.prompt({ commandId: command.id, text: command.payload.text ?? "", attempt: command.attempt }),
        { capacity: 1024 }
      )
      while (true) {
        const batch = yield* Queue.takeAll(events).pipe(
          Effect.catchIf(Cause.isDone, () => Effect.succeed(undefined))
        )
        if (batch === undefined) return
        const drafts = batch.map((event) => draftOf(event, command))
        // Whatever else is already queued joins the burst; the queue also tells whether the turn has ended.
        for (let next = Queue.takeUnsafe(events); next !== undefined; next = Queue.takeUnsafe(events)) {
          if (Exit.isSuccess(next)) {
            drafts.push(draftOf(next.value, command))
            continue
          }
          if (Cause.isDone(Cause.squash(next.cause))) {
            last = drafts
            return
          }
          yield* fenced(log.append(lease, drafts), command.id)
          return yield* Effect.failCause(next.cause)
        }
        yield* fenced(log.append(lease, drafts), command.id)
      }
    }).pipe(Effect.scoped)
    const outcome: TurnOutcome = yield* turn.pipe(
      Effect.as<TurnOutcome>({ _tag: "acked" }),
      Effect.catchTag("RuntimeFailure", (error) => Effect.succeed<TurnOutcome>({ _tag: "failed", message: error.message })),
      Effect.raceFirst(Deferred.await(session.abort).pipe(Effect.as<TurnOutcome>({ _tag: "cancelled" })))
    )

    // The state is saved before the ack; the ack statement itself moves checkpoint_version (no save, no ack). The
    // turn's last burst is not held back for the save: it is appended while the save runs. Without checkpoints
    // there is nothing to wait for, and it rides in the closing statement.
    const closing: Array<EventDraft> = checkpoints.enabled ? [] : [...last]
    if (outcome._tag === "failed") {
      closing.push({ type: "runtime.error", payload: { message: outcome.message, commandId: command.id }, ...owner })
    }
    closing.push({ type: "session.idle", payload: { commandId: command.id, outcome: outcome._tag }, ...owner })
    const flushLast = checkpoints.enabled && last.length > 0 ? fenced(log.append(lease, last), command.id) : Effect.void
    const [, checkpointVersion] = yield* Effect.all([flushLast, checkpoint.save], { concurrency: 2 })
    yield* fenced(
      log.append(lease, closing, {
        commandId: command.id,
        outcome: outcome._tag,
        error: outcome._tag === "failed" ? outcome.message : undefined,
        checkpointVersion
      }),
      command.id
    )
    if (checkpointVersion !== undefined) {
      checkpoint.version = checkpointVersion
      // Amortized: the first save of a lease (which also clears what earlier owners left) and every PRUNE_EVERY-th.
      if (checkpointVersion % PRUNE_EVERY === 1) {
        yield* FiberMap.run(pruning, lease.sessionId, checkpoints.prune(lease), { onlyIfMissing: true })
      }
    }
    yield* metrics.inc("open_cowork_cloud_worker_commands_processed_total", { status: outcome._tag })
    yield* Effect.logInfo("command completed").pipe(Effect.annotateLogs({ outcome: outcome._tag, attempt: command.attempt }))
  })

  const runAbort = Effect.fn("Worker.runAbort")(function*(lease: Lease, command: RunnableCommand, session: HeldSession) {
    yield* fenced(
      log.append(lease, [{ type: "session.aborted", payload: { commandId: command.id }, commandId: command.id, attempt: command.attempt }], {
        commandId: command.id,
        outcome: "acked"
      }),
      command.id
    )
    session.abort = yield* Deferred.make<void>()
    yield* metrics.inc("open_cowork_cloud_worker_commands_processed_total", { status: "acked" })
    yield* Effect.logInfo("session aborted")
  })

  /** Runs the leased session's mailbox until it is empty (true: lease released) or the worker drains (false). */
  const runSession = (lease: Lease, session: HeldSession) =>
    Effect.gen(function*() {
      // A runtime this worker kept warm is reused only when it holds exactly the lease's checkpoint: then the
      // restore (object-store reads) is skipped. Anything else is closed and the session restores from the store.
      const cached = warm.get(lease.sessionId)
      warm.delete(lease.sessionId)
      const reuse = cached !== undefined && checkpoints.enabled && cached.version === (lease.checkpointVersion ?? 0)
      if (cached !== undefined && !reuse) yield* Scope.close(cached.scope, Exit.void)
      const runtimeScope = reuse ? cached.scope : yield* Scope.make()
      let keptWarm = false
      yield* Effect.addFinalizer(() => keptWarm ? Effect.void : Scope.close(runtimeScope, Exit.void))
      let runtimeSession: RuntimeSession | undefined = reuse ? cached.runtime : undefined
      const openRuntime = Effect.suspend(() =>
        runtimeSession !== undefined
          ? Effect.succeed(runtimeSession)
          : runtime.open(lease.sessionId).pipe(
            Effect.provideService(Scope.Scope, runtimeScope),
            Effect.tap((opened) => Effect.sync(() => { runtimeSession = opened }))
          )
      )
      const keepWarm = Effect.suspend(() => {
        if (!checkpoints.enabled || runtimeSession === undefined || draining) return Effect.void
        keptWarm = true
        warm.set(lease.sessionId, { runtime: runtimeSession, version: checkpoint.version, scope: runtimeScope })
        const [oldest] = warm.keys()
        if (warm.size <= warmCapacity || oldest === undefined) return Effect.void
        const evicted = warm.get(oldest)!
        warm.delete(oldest)
        return Scope.close(evicted.scope, Exit.void)
      })
      const checkpoint: CheckpointCursor = {
        version: lease.checkpointVersion ?? 0,
        save: Effect.suspend(() =>
          runtimeSession === undefined ? Effect.succeed(undefined) : checkpoints.save(lease, runtimeSession, checkpoint.version))
      }

      const mailbox = Effect.gen(function*() {
        // Restore before anything runs (the lease is renewed meanwhile): a failure ends this fiber with the
        // session's commands still pending, and the lease expired for the next claimer.
        if (checkpoints.enabled && !reuse) checkpoint.version = yield* checkpoints.restore(lease, yield* openRuntime)
        while (true) {
          if (draining) return yield* fenced(leases.releaseIfIdle(lease))
          const next = yield* fenced(queue.next(lease))
          if (Option.isNone(next)) {
            if (yield* fenced(leases.releaseIfIdle(lease))) {
              yield* keepWarm
              return true
            }
            continue
          }
          const command = next.value
          const run = command.kind === "abort"
            ? runAbort(lease, command, session)
            : runPrompt(lease, command, session, openRuntime, checkpoint)
          yield* run.pipe(
            Effect.withSpan("worker.command", {
              kind: "consumer",
              links: enqueuedBy(command),
              attributes: { "cowork.command.kind": command.kind, "cowork.command.attempt": command.attempt, "cowork.epoch": lease.epoch }
            }),
            Effect.annotateLogs({ command_id: command.id })
          )
        }
      })

      const renewal = Effect.sleep(Math.max(1, Math.floor(ttl / 3))).pipe(
        Effect.andThen(fenced(leases.renew(lease, ttl)).pipe(
          Effect.tapError(() => metrics.inc("open_cowork_cloud_worker_lease_denials_total", { reason: "renewal_lost" }))
        )),
        Effect.andThen(metrics.inc("open_cowork_cloud_worker_lease_renewals_total")),
        Effect.forever
      )
      return yield* Effect.raceFirst(mailbox, renewal)
    }).pipe(Effect.scoped)

  const supervise = (lease: Lease, session: HeldSession) =>
    runSession(lease, session).pipe(
      metrics.time("open_cowork_cloud_worker_loop_duration_ms"),
      Effect.onExit((exit) =>
        Effect.gen(function*() {
          const released = Exit.isSuccess(exit) && exit.value === true
          const lost = Exit.isFailure(exit) && isStaleOwner(exit.cause)
          if (!released && !lost) {
            // Drained, interrupted or crashed while holding the lease: expire it so another worker claims at once.
            yield* leases.expire(lease).pipe(
              Effect.catchTag("StaleOwner", () => Effect.void),
              Effect.catchCause((cause) => Effect.logWarning("lease expiry failed", cause))
            )
          }
          if (Exit.isFailure(exit) && !lost && !Cause.hasInterruptsOnly(exit.cause)) {
            yield* Effect.logError("session fiber failed", exit.cause)
          }
          if (held.get(lease.sessionId)?.epoch === lease.epoch) held.delete(lease.sessionId)
          yield* setActive
          yield* Effect.logDebug(released ? "lease released" : lost ? "lease lost" : "lease given up")
          // A crashed session is left to the backstop poll, so a persistent fault cannot spin the claim loop.
          if (!draining && (released || lost)) yield* requestClaim
        })
      ),
      Effect.annotateLogs({ session_id: lease.sessionId, epoch: lease.epoch, worker_id: workerId })
    )

  const claimPass = Effect.gen(function*() {
    if (draining) return
    const free = config.concurrency - held.size
    if (free <= 0) return
    const claimed = yield* leases.claim(workerId, free, ttl, config.maxCommandAttempts, config.credential).pipe(
      metrics.time("open_cowork_cloud_runnable_session_claim_duration_ms")
    )
    if (claimed.length > 0) yield* metrics.inc("open_cowork_cloud_worker_lease_claims_total", claimed.length)
    for (const lease of claimed) {
      const session: HeldSession = { epoch: lease.epoch, abort: yield* Deferred.make<void>() }
      held.set(lease.sessionId, session)
      yield* FiberMap.run(sessions, lease.sessionId, supervise(lease, session))
      yield* Effect.logDebug("session claimed").pipe(Effect.annotateLogs({ session_id: lease.sessionId, epoch: lease.epoch }))
    }
    yield* setActive
  }).pipe(
    Effect.uninterruptible,
    Effect.catchCause((cause) => Effect.logError("claim pass failed", cause))
  )

  const reapTick = Effect.gen(function*() {
    const result = yield* leases.reapExpired({
      batchSize: config.reaperBatchSize,
      drainCap: config.reaperDrainCap,
      maxAttempts: config.maxCommandAttempts
    })
    if (result.reaped > 0) {
      const reaped = "open_cowork_cloud_worker_expired_leases_reaped_total"
      if (result.requeued > 0) yield* metrics.inc(reaped, { outcome: "requeued" }, result.requeued)
      if (result.dead > 0) yield* metrics.inc(reaped, { outcome: "dead" }, result.dead)
      const idle = result.reaped - result.requeued - result.dead
      if (idle > 0) yield* metrics.inc(reaped, { outcome: "idle" }, idle)
      yield* Effect.logInfo("expired leases reaped").pipe(Effect.annotateLogs({ ...result }))
      yield* requestClaim
    }
    if (result.capHit) {
      yield* metrics.inc("open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total")
      yield* Effect.logWarning("reaper hit its drain cap").pipe(Effect.annotateLogs({ drain_cap: config.reaperDrainCap }))
    }
  }).pipe(Effect.catchCause((cause) => Effect.logError("reaper tick failed", cause)))

  // Finalizers run in reverse order: stop claiming and reaping, drain sessions, stop beating, beat "stopped".
  yield* Effect.addFinalizer(() => beat("stopped"))
  yield* beat("active")
  yield* Effect.forkScoped(Effect.forever(Effect.sleep(config.heartbeatIntervalMs).pipe(
    Effect.andThen(Effect.suspend(() => beat(draining ? "draining" : "active")))
  )))
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const last = yield* Ref.get(workerStatus.lastHeartbeatAt)
    const now = yield* Clock.currentTimeMillis
    yield* metrics.set("open_cowork_cloud_worker_heartbeat_age_ms", last === undefined ? 0 : Math.max(0, now - last))
  }).pipe(Effect.andThen(Effect.sleep(HEARTBEAT_AGE_SAMPLE_MS)))))

  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      draining = true
      yield* Ref.set(workerStatus.draining, true)
      yield* beat("draining")
      yield* Effect.logInfo("worker draining").pipe(Effect.annotateLogs({ active: held.size, grace_ms: config.shutdownGraceMs }))
      const finished = yield* FiberMap.awaitEmpty(sessions).pipe(
        Effect.ignore,
        Effect.timeoutOption(config.shutdownGraceMs)
      )
      yield* metrics.inc("open_cowork_cloud_worker_shutdown_drains_total", {
        outcome: Option.isNone(finished) ? "grace_expired" : "completed"
      })
      if (Option.isNone(finished)) {
        yield* Effect.logWarning("shutdown grace elapsed; expiring remaining leases").pipe(
          Effect.annotateLogs({ sessions: [...held.keys()] })
        )
        yield* FiberMap.clear(sessions)
      }
      yield* Effect.logInfo("worker drained")
    }).pipe(Effect.annotateLogs({ worker_id: workerId }))
  )

  const signals = yield* changeFeed.commandSignals
  yield* Stream.runForEach(signals, (signal) =>
    Effect.gen(function*() {
      const session = held.get(signal.sessionId)
      if (signal.kind === "abort" && session !== undefined) {
        yield* Deferred.succeed(session.abort, undefined)
        yield* Effect.logInfo("abort requested").pipe(Effect.annotateLogs({ session_id: signal.sessionId, epoch: session.epoch }))
      }
      if (session === undefined) yield* requestClaim
    })).pipe(
      Effect.catchCause((cause) => Effect.logError("command signal stream failed", cause)),
      Effect.forkScoped
    )

  yield* Effect.forkScoped(Effect.forever(Effect.sleep(config.reaperIntervalMs).pipe(Effect.andThen(reapTick))))
  yield* Effect.forkScoped(Effect.forever(claimPass.pipe(
    Effect.andThen(Effect.raceFirst(Queue.take(wake), Effect.sleep(config.pollIntervalMs)))
  )))
  yield* Effect.logInfo("worker started").pipe(
    Effect.annotateLogs({ worker_id: workerId, concurrency: config.concurrency, lease_ttl_ms: ttl })
  )
})

/** How often the heartbeat-age gauge is refreshed between beats. */
const HEARTBEAT_AGE_SAMPLE_MS = 1_000

/** The worker role without its configuration; records into the process's `Metrics`, provides `WorkerStatus`. */
export const layerNoDeps = Layer.effectDiscard(make).pipe(
  Layer.provideMerge(WorkerStatus.layer),
  Layer.provide(SessionCheckpoints.layer)
)

/**
 * The worker role configured from the `OPEN_COWORK_CLOUD_*` environment, with its backlog sampler and (when
 * `OPEN_COWORK_CLOUD_LIVENESS_PORT` is set) its probe and metrics server. Needs the process's `Metrics`.
 */
export const layer = Layer.mergeAll(
  WorkerLiveness.layer.pipe(Layer.provideMerge(layerNoDeps)),
  BacklogSampler.layer
).pipe(Layer.provide(WorkerConfig.layer))
