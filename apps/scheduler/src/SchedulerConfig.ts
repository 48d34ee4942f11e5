import { DEFAULT_QUOTAS, type QuotaLimits } from "@cowork/domain"
import { DefaultProfileName, quotaDefaults } from "@cowork/services"
import { Config, Context, Effect, Layer } from "effect"
import * as Os from "node:os"

/** The scheduler role's settings (OPEN_COWORK_CLOUD_SCHEDULER_*; see the README's configuration table). */
export interface SchedulerSettings {
  readonly schedulerId: string
  readonly profileName: string
  /**
   * The shortest time between two passes (unless the last one claimed a full batch), and how often open runs'
   * outcomes are followed. The scheduler otherwise sleeps until the next due slot or claim expiry.
   */
  readonly tickMs: number
  /**
   * The longest sleep when nothing is due: a backstop for a lost workflow-change notification (a reconnected
   * listener already wakes the scheduler).
   */
  readonly backstopMs: number
  /** A claim's lifetime; renewed while a batch takes longer than a third of it. */
  readonly claimTtlMs: number
  /** Due workflows claimed per tick. */
  readonly batchSize: number
  /** Expired claims cleared per reaper tick. */
  readonly reaperDrainCap: number
  /**
   * How often the scheduler beats: the idle heartbeat interval (OPEN_COWORK_CLOUD_IDLE_HEARTBEAT_INTERVAL_MS, at least
   * the heartbeat interval). A scheduler's work is guarded by claims with their own expiry, not by its heartbeat;
   * its row records the interval, so readers judge its freshness by it.
   */
  readonly heartbeatIntervalMs: number
  /** Open runs moved to their session's outcome per tick. */
  readonly outcomeBatch: number
  /** Claimed workflows fired at once (each in its own transaction). */
  readonly fireConcurrency: number
  /** The quota defaults (OPEN_COWORK_CLOUD_QUOTA_*); each org's overrides apply over them. */
  readonly quotaDefaults: QuotaLimits
}

export class SchedulerConfig extends Context.Service<SchedulerConfig, SchedulerSettings>()("cowork/SchedulerConfig") {
  static readonly layerConfig = Layer.effect(
    SchedulerConfig,
    Effect.gen(function*() {
      const generated = `sched-${Os.hostname().slice(0, 40)}-${globalThis.crypto.randomUUID().slice(0, 8)}`
      return SchedulerConfig.of({
        schedulerId: yield* Config.String("OPEN_COWORK_CLOUD_SCHEDULER_ID").pipe(Config.withDefault(generated)),
        profileName: yield* DefaultProfileName,
        tickMs: yield* Config.Int("OPEN_COWORK_CLOUD_SCHEDULER_TICK_MS").pipe(Config.withDefault(1_000)),
        backstopMs: yield* Config.Int("OPEN_COWORK_CLOUD_SCHEDULER_BACKSTOP_MS").pipe(Config.withDefault(300_000)),
        claimTtlMs: yield* Config.Int("OPEN_COWORK_CLOUD_SCHEDULER_CLAIM_TTL_MS").pipe(Config.withDefault(30_000)),
        batchSize: yield* Config.Int("OPEN_COWORK_CLOUD_SCHEDULER_BATCH").pipe(Config.withDefault(100)),
        reaperDrainCap: yield* Config.Int("OPEN_COWORK_CLOUD_SCHEDULER_REAPER_DRAIN_CAP").pipe(Config.withDefault(100)),
        heartbeatIntervalMs: Math.max(
          yield* Config.Int("OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS").pipe(Config.withDefault(5_000)),
          yield* Config.Int("OPEN_COWORK_CLOUD_IDLE_HEARTBEAT_INTERVAL_MS").pipe(Config.withDefault(60_000))
        ),
        outcomeBatch: 200,
        fireConcurrency: yield* Config.Int("OPEN_COWORK_CLOUD_SCHEDULER_FIRE_CONCURRENCY").pipe(Config.withDefault(4)),
        quotaDefaults: yield* quotaDefaults
      })
    })
  )

  static readonly layerTest = (overrides: Partial<SchedulerSettings> = {}) =>
    Layer.succeed(SchedulerConfig, SchedulerConfig.of({
      schedulerId: `sched-test-${globalThis.crypto.randomUUID().slice(0, 8)}`,
      profileName: "default",
      tickMs: 1_000,
      backstopMs: 300_000,
      claimTtlMs: 30_000,
      batchSize: 100,
      reaperDrainCap: 100,
      heartbeatIntervalMs: 5_000,
      outcomeBatch: 200,
      fireConcurrency: 4,
      quotaDefaults: DEFAULT_QUOTAS,
      ...overrides
    }))
}
