import type { Lease } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { CommandQueue, type RuntimeSession } from "@cowork/services"
import { CheckpointStore } from "@cowork/storage"
import { Config, Context, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"

/** The session's checkpoint could not be restored; its commands stay pending until a restore succeeds. */
export class CheckpointRestoreFailed extends Schema.TaggedError<CheckpointRestoreFailed>()("CheckpointRestoreFailed", {
  sessionId: Schema.String,
  version: Schema.Number,
  reason: Schema.String
}) {}

/**
 * Versions are unique per lease owner: the first save under epoch E is `E * VERSIONS_PER_EPOCH + 1`, so a stale
 * owner's unacknowledged manifest can never share a key with the new owner's, and versions only grow.
 */
const VERSIONS_PER_EPOCH = 1_000_000

const nextVersion = (lease: Lease, current: number): number => {
  const floor = lease.epoch * VERSIONS_PER_EPOCH
  return current < floor ? floor + 1 : current + 1
}

/** How often a failed checkpoint save is retried while the lease is still held (the command stays unacknowledged). */
const SAVE_RETRY = Schedule.spaced("500 millis")

/**
 * A failed restore is retried while the lease is held: exponential from `baseMs`, each delay capped at `capMs`, at
 * most `retries` times. Then the session fiber gives the lease back (its commands stay pending) and the next
 * claim, at the latest the backstop poll, starts over.
 */
export interface RestoreRetry {
  readonly baseMs: number
  readonly capMs: number
  readonly retries: number
}

const DEFAULT_RESTORE_RETRY: RestoreRetry = { baseMs: 250, capMs: 5_000, retries: 8 }

const restoreSchedule = (retry: RestoreRetry) =>
  Schedule.exponential(Duration.millis(retry.baseMs), 2).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(retry.capMs))))
  )

/** What a failure means to an operator, without hosts, keys or messages from the store (they go to the log). */
const REDACTED_REASON: Readonly<Record<string, string>> = {
  ObjectStoreUnavailable: "object store unavailable",
  ObjectNotFound: "checkpoint not found in the object store",
  CheckpointCorrupt: "checkpoint corrupt",
  SecretRevealFailed: "checkpoint could not be decrypted",
  SecretAdapterUnavailable: "checkpoint key unavailable",
  InvalidObjectKey: "invalid checkpoint key"
}

const restoreErrorMessage = (tag: string) =>
  `checkpoint restore failed: ${REDACTED_REASON[tag] ?? "unexpected error"}`

/**
 * The worker's side of checkpoints: restore before a claimed session runs anything, save before each command's
 * ack (the ack statement then moves `checkpoint_version`), prune the old ones after. Disabled (every call a no-op)
 * when no `CheckpointStore` is provided or OPEN_COWORK_CLOUD_CHECKPOINTS=false.
 */
export class SessionCheckpoints extends Context.Service<SessionCheckpoints, {
  readonly enabled: boolean
  /**
   * Loads the lease's checkpoint into the runtime (an empty state when there is none yet, so nothing from an
   * unacknowledged attempt survives). Returns the restored version.
   */
  readonly restore: (lease: Lease, session: RuntimeSession) => Effect.Effect<number, CheckpointRestoreFailed>
  /**
   * Saves the runtime's state as the next version after `current` (the acknowledged one), retrying while the store is
   * down; undefined when disabled, or when the state is `current`'s (nothing written, nothing to move).
   */
  readonly save: (lease: Lease, session: RuntimeSession, current: number) => Effect.Effect<number | undefined>
  /** Keeps the newest OPEN_COWORK_CLOUD_CHECKPOINT_KEEP versions; failures are logged, never fatal. */
  readonly prune: (lease: Lease) => Effect.Effect<void>
}>()("cowork/worker/SessionCheckpoints") {
  static readonly layer = Layer.effect(SessionCheckpoints, Effect.gen(function*() {
    const store = yield* Effect.serviceOption(CheckpointStore)
    const enabledByConfig = yield* Config.Boolean("OPEN_COWORK_CLOUD_CHECKPOINTS").pipe(Config.withDefault(true))
    const keepLast = yield* Config.Int("OPEN_COWORK_CLOUD_CHECKPOINT_KEEP").pipe(Config.withDefault(3))
    const restoreRetry = Option.getOrElse(yield* Effect.serviceOption(RestoreRetryConfig), () => DEFAULT_RESTORE_RETRY)
    return Option.isSome(store) && enabledByConfig
      ? make(store.value, keepLast, { queue: yield* CommandQueue, metrics: yield* Metrics, restoreRetry })
      : disabled
  }))
}

/** Overrides DEFAULT_RESTORE_RETRY (tests). */
export class RestoreRetryConfig extends Context.Service<RestoreRetryConfig, RestoreRetry>()("cowork/worker/RestoreRetryConfig") {}

interface CheckpointReporting {
  readonly queue: CommandQueue["Service"]
  readonly metrics: Metrics["Service"]
  readonly restoreRetry?: RestoreRetry | undefined
}

const describe = (error: { readonly _tag: string }) => {
  const detail = (error as { readonly message?: unknown }).message ?? (error as { readonly key?: unknown }).key
  return typeof detail === "string" ? `${error._tag}: ${detail}` : error._tag
}

const disabled = SessionCheckpoints.of({
  enabled: false,
  restore: (lease) => Effect.succeed(lease.checkpointVersion ?? 0),
  save: () => Effect.succeed(undefined),
  prune: () => Effect.void
})

const make = (store: CheckpointStore["Service"], keepLast: number, reporting: CheckpointReporting) => {
  const { queue, metrics } = reporting
  const countFailure = (operation: "save" | "restore") =>
    metrics.inc("open_cowork_cloud_worker_checkpoint_failures_total", { operation })
  // The command row shows why it is not running; a lease lost meanwhile just means the next owner reports it.
  const noteRestoreError = (lease: Lease, tag: string) =>
    queue.noteError(lease, restoreErrorMessage(tag)).pipe(
      Effect.catchTag("StaleOwner", () => Effect.succeedNone),
      Effect.catchCause((cause) => Effect.logWarning("could not record the restore error on the command", cause).pipe(Effect.as(Option.none())))
    )
  return SessionCheckpoints.of({
    enabled: true,
    restore: Effect.fnUntraced(function*(lease: Lease, session: RuntimeSession) {
      const version = lease.checkpointVersion ?? 0
      if (lease.orgId === undefined) return version
      if (version === 0) {
        yield* session.importState({ files: new Map() })
        return 0
      }
      const orgId = lease.orgId
      const state = yield* Effect.suspend(() => store.load(orgId, lease.sessionId, version)).pipe(
        Effect.tapError((error) =>
          Effect.gen(function*() {
            yield* countFailure("restore")
            const commandId = yield* noteRestoreError(lease, error._tag)
            yield* Effect.logError("checkpoint restore failed; the session's commands stay pending until it succeeds").pipe(
              Effect.annotateLogs({
                session_id: lease.sessionId,
                checkpoint_version: version,
                reason: describe(error),
                command_id: Option.getOrUndefined(commandId)
              })
            )
          })
        ),
        Effect.retry({
          schedule: restoreSchedule(reporting.restoreRetry ?? DEFAULT_RESTORE_RETRY),
          times: (reporting.restoreRetry ?? DEFAULT_RESTORE_RETRY).retries
        }),
        Effect.mapError((error) =>
          new CheckpointRestoreFailed({
            sessionId: lease.sessionId,
            version,
            reason: describe(error)
          })
        )
      )
      yield* session.importState(state)
      yield* Effect.logInfo("checkpoint restored").pipe(
        Effect.annotateLogs({ session_id: lease.sessionId, checkpoint_version: version, files: state.files.size })
      )
      return version
    }, Effect.withSpan("SessionCheckpoints.restore")),
    save: Effect.fnUntraced(function*(lease: Lease, session: RuntimeSession, current: number) {
      const orgId = lease.orgId
      if (orgId === undefined) return undefined
      const version = nextVersion(lease, current)
      const state = yield* session.exportState
      const saved = yield* store.save(orgId, lease.sessionId, version, state, current).pipe(
        Effect.tapError((error) =>
          countFailure("save").pipe(
            Effect.andThen(Effect.logWarning("checkpoint save failed; the command is not acknowledged until it succeeds")),
            Effect.annotateLogs({ session_id: lease.sessionId, checkpoint_version: version, error: error._tag })
          )
        ),
        Effect.retry(SAVE_RETRY),
        // The schedule never gives up: only interruption (lease lost, shutdown) ends the retries.
        Effect.orDie
      )
      // The state is the acknowledged version's: nothing to write, and the ack leaves checkpoint_version where it is.
      if (!saved.written) return undefined
      yield* Effect.logInfo("checkpoint saved").pipe(Effect.annotateLogs({
        session_id: lease.sessionId,
        checkpoint_version: version,
        uploaded_bytes: saved.uploadedBytes,
        uploaded_chunks: saved.uploadedChunks,
        reused_chunks: saved.reusedChunks,
        inlined_chunks: saved.inlinedChunks
      }))
      return version
    }, Effect.withSpan("SessionCheckpoints.save")),
    prune: (lease) =>
      lease.orgId === undefined
        ? Effect.void
        : store.prune(lease.orgId, lease.sessionId, keepLast).pipe(
          Effect.catchCause((cause) => Effect.logWarning("checkpoint prune failed", cause)),
          Effect.asVoid
        )
  })
}
