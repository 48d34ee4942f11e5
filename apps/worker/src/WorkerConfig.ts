import { SERVICE_VERSION } from "@cowork/domain"
import { Config, ConfigProvider, Context, Effect, Layer, Option, type Redacted } from "effect"
import * as Os from "node:os"

export interface WorkerSettings {
  readonly workerId: string
  /** Sessions this worker runs at once. */
  readonly concurrency: number
  /** Runtimes of released sessions kept warm (reused when the next claim finds the same checkpoint). */
  readonly warmRuntimes: number
  readonly leaseTtlMs: number
  readonly shutdownGraceMs: number
  readonly maxCommandAttempts: number
  /** Expired leases the reaper recovers per tick at most. */
  readonly reaperDrainCap: number
  readonly reaperBatchSize: number
  readonly reaperIntervalMs: number
  readonly heartbeatIntervalMs: number
  /** The heartbeat interval while the worker holds no session (readers judge freshness by each row's interval). */
  readonly idleHeartbeatIntervalMs: number
  /**
   * The longest wait of the lease reaper while no lease is held anywhere, and of the backlog sample while no command
   * signal arrives. Events wake them sooner: a command signal, a reconnected listener, a lease's expiry.
   */
  readonly idleBackstopMs: number
  /** Heartbeat rows (any process's) last seen longer ago than this are deleted by the reaper. */
  readonly heartbeatRetentionMs: number
  /** Backstop claim poll; command signals wake the claim loop sooner. */
  readonly pollIntervalMs: number
  readonly region: string | null
  readonly profileName: string
  readonly version: string
  readonly capabilities: ReadonlyArray<string>
  /**
   * The worker's `ocw_<id>_<secret>` (OPEN_COWORK_CLOUD_WORKER_CREDENTIAL). Set: the worker is managed and must be
   * registered, active and credentialed to claim and heartbeat. Unset on an unregistered worker id: unmanaged
   * (the embedded `npm start` worker), claiming as the single-node default always did.
   */
  readonly credential: Redacted.Redacted<string> | undefined
}

const defaultWorkerId = () => `worker-${Os.hostname()}-${globalThis.crypto.randomUUID().slice(0, 8)}`

/** Fills in everything derived or defaulted, so tests state only what they care about. */
const settings = (input: Partial<WorkerSettings> = {}): WorkerSettings => {
  const leaseTtlMs = input.leaseTtlMs ?? 15_000
  const reaperDrainCap = input.reaperDrainCap ?? 100
  return {
    workerId: input.workerId ?? defaultWorkerId(),
    concurrency: input.concurrency ?? 4,
    warmRuntimes: input.warmRuntimes ?? 64,
    leaseTtlMs,
    shutdownGraceMs: input.shutdownGraceMs ?? 30_000,
    maxCommandAttempts: input.maxCommandAttempts ?? 3,
    reaperDrainCap,
    reaperBatchSize: input.reaperBatchSize ?? Math.max(1, Math.min(50, reaperDrainCap)),
    reaperIntervalMs: input.reaperIntervalMs ?? Math.max(1, Math.floor(leaseTtlMs / 3)),
    heartbeatIntervalMs: input.heartbeatIntervalMs ?? 5_000,
    idleHeartbeatIntervalMs: input.idleHeartbeatIntervalMs ?? 60_000,
    idleBackstopMs: input.idleBackstopMs ?? 300_000,
    heartbeatRetentionMs: input.heartbeatRetentionMs ?? 7 * 24 * 3600 * 1000,
    pollIntervalMs: input.pollIntervalMs ?? 30_000,
    region: input.region ?? null,
    profileName: input.profileName ?? "default",
    version: input.version ?? SERVICE_VERSION,
    capabilities: input.capabilities ?? ["prompt", "abort"],
    credential: input.credential
  }
}

const optionalInt = (name: string) => Config.Int(name).pipe(Config.option, Config.map((o) => o._tag === "Some" ? o.value : undefined))
const optionalString = (name: string) =>
  Config.String(name).pipe(Config.option, Config.map((o) => o._tag === "Some" && o.value !== "" ? o.value : undefined))

/** The worker's settings, from the `OPEN_COWORK_CLOUD_*` environment (see the operator runbooks). */
export class WorkerConfig extends Context.Service<WorkerConfig, WorkerSettings>()("cowork/worker/WorkerConfig") {
  static readonly layer = Layer.effect(WorkerConfig, Effect.gen(function*() {
    const workerId = yield* optionalString("OPEN_COWORK_CLOUD_WORKER_ID")
    const credential = Option.getOrUndefined(yield* Config.Redacted("OPEN_COWORK_CLOUD_WORKER_CREDENTIAL").pipe(Config.option))
    if (credential !== undefined && workerId === undefined) {
      return yield* Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({
        message: "OPEN_COWORK_CLOUD_WORKER_CREDENTIAL needs OPEN_COWORK_CLOUD_WORKER_ID: a managed worker runs under its registered id"
      })))
    }
    return settings({
      credential,
      workerId,
      concurrency: yield* optionalInt("OPEN_COWORK_CLOUD_WORKER_CONCURRENCY"),
      // A warm opencode runtime is a live process (~350 MiB): by default keep as many warm as run at once.
      warmRuntimes: (yield* optionalInt("OPEN_COWORK_CLOUD_WORKER_WARM_RUNTIMES")) ??
        ((yield* optionalString("OPEN_COWORK_CLOUD_RUNTIME")) === "opencode"
          ? (yield* optionalInt("OPEN_COWORK_CLOUD_WORKER_CONCURRENCY")) ?? 4
          : undefined),
      leaseTtlMs: yield* optionalInt("OPEN_COWORK_CLOUD_LEASE_TTL_MS"),
      shutdownGraceMs: yield* optionalInt("OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS"),
      maxCommandAttempts: yield* optionalInt("OPEN_COWORK_CLOUD_MAX_COMMAND_ATTEMPTS"),
      reaperDrainCap: yield* optionalInt("OPEN_COWORK_CLOUD_REAPER_DRAIN_CAP"),
      heartbeatIntervalMs: yield* optionalInt("OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS"),
      idleHeartbeatIntervalMs: yield* optionalInt("OPEN_COWORK_CLOUD_IDLE_HEARTBEAT_INTERVAL_MS"),
      idleBackstopMs: yield* optionalInt("OPEN_COWORK_CLOUD_IDLE_BACKSTOP_MS"),
      heartbeatRetentionMs: yield* optionalInt("OPEN_COWORK_CLOUD_HEARTBEAT_RETENTION_MS"),
      pollIntervalMs: yield* optionalInt("OPEN_COWORK_CLOUD_POLL_INTERVAL_MS"),
      region: yield* optionalString("OPEN_COWORK_CLOUD_REGION"),
      profileName: yield* optionalString("OPEN_COWORK_CLOUD_PROFILE_NAME")
    })
  }))

  static readonly layerWith = (input: Partial<WorkerSettings>) => Layer.succeed(WorkerConfig, settings(input))
}
