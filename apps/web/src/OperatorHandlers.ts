import { Api, CurrentCaller, type Diagnostics, heartbeatFreshWithinMs, type RuntimeStatus, SERVICE_VERSION, type WorkerHeartbeat } from "@cowork/domain"
import { Metrics, MetricsCatalog, redactDeep } from "@cowork/observability"
import { ByokStore, ChangeFeed, DeliveryFeed, CommandQueue, ControlPlaneStatus, Heartbeats, Projections, QUEUE_SCAN_LIMIT, SessionStore } from "@cowork/services"
import { Config, Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import * as WebReadiness from "./WebReadiness.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

/**
 * The operator routes. Everything they return is deployment state (never tenant content), and the diagnostics
 * bundle goes through `redactDeep` before it leaves the process. An org principal sees the processes that serve its
 * org, with only its own sessions in `activeWorkIds`, and reaches only its own sessions' projections (another org's
 * session is a 404); a platform operator sees everything.
 */
export const layer = HttpApiBuilder.group(Api, "operator", Effect.fn(function*(handlers) {
  const lifecycle = yield* WebLifecycle
  const metrics = yield* Metrics
  const heartbeats = yield* Heartbeats
  const byokStore = yield* ByokStore
  const deliveryFeed = yield* DeliveryFeed
  const queue = yield* CommandQueue
  const projections = yield* Projections
  const status = yield* ControlPlaneStatus
  const sessions = yield* SessionStore
  const feed = yield* ChangeFeed
  const heartbeatIntervalMs = yield* Config.Int("OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS").pipe(Config.withDefault(5_000))
  const freshWithinMs = heartbeatFreshWithinMs(heartbeatIntervalMs)

  /** The caller's org, or undefined for a platform operator (every org). */
  const callerOrg = Effect.map(CurrentCaller, (caller) => (caller.kind === "org" ? caller.orgId : undefined))

  /** An org principal sees the processes that serve its org, with only its own sessions in `activeWorkIds`. */
  const listHeartbeats = Effect.flatMap(callerOrg, (orgId) => heartbeats.list(freshWithinMs, orgId))

  /** An org principal reaches only its own org's sessions: another org's is a 404, as if it did not exist. */
  const ownSession = (sessionId: string) =>
    Effect.flatMap(callerOrg, (orgId) => (orgId === undefined ? Effect.void : Effect.asVoid(sessions.get(orgId, sessionId))))

  const runtimeStatus = (beats: ReadonlyArray<WorkerHeartbeat>): RuntimeStatus => {
    const workers = beats.filter((beat) => beat.role === "worker")
    const schedulers = beats.filter((beat) => beat.role === "scheduler")
    const freshWorkers = workers.filter((beat) => beat.fresh)
    return {
      role: lifecycle.role,
      profileName: lifecycle.profileName,
      canExecute: freshWorkers.some((beat) => beat.status === "active"),
      commandProcessing: metrics.role === "all" ? "in_process" : "external_workers",
      checkpoints: { enabled: freshWorkers.some((beat) => beat.capabilities.includes("checkpoints")) },
      runtime: {
        kinds: [...new Set(freshWorkers.flatMap((beat) =>
          beat.capabilities.filter((c) => c.startsWith("runtime:")).map((c) => c.slice("runtime:".length))
        ))].sort()
      },
      heartbeats: {
        workers: workers.length,
        schedulers: schedulers.length,
        freshWorkers: freshWorkers.length,
        freshSchedulers: schedulers.filter((beat) => beat.fresh).length
      }
    }
  }

  const sum = <N extends Parameters<typeof metrics.read>[0]>(name: N, label: string, values: ReadonlyArray<string>) =>
    Effect.map(
      Effect.forEach(values, (value) => (metrics.read as (n: string, l: object) => Effect.Effect<number>)(name, { [label]: value })),
      (counts) => counts.reduce((a, b) => a + b, 0)
    )

  const counters = Effect.all({
    lease_claims: metrics.read("open_cowork_cloud_worker_lease_claims_total"),
    lease_renewals: metrics.read("open_cowork_cloud_worker_lease_renewals_total"),
    lease_denials: sum(
      "open_cowork_cloud_worker_lease_denials_total",
      "reason",
      MetricsCatalog.open_cowork_cloud_worker_lease_denials_total.labels.reason
    ),
    expired_leases_reaped: sum(
      "open_cowork_cloud_worker_expired_leases_reaped_total",
      "outcome",
      MetricsCatalog.open_cowork_cloud_worker_expired_leases_reaped_total.labels.outcome
    ),
    reaper_drain_cap_hits: metrics.read("open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total"),
    stale_owner_rejections: sum(
      "open_cowork_cloud_worker_stale_owner_rejections_total",
      "operation",
      MetricsCatalog.open_cowork_cloud_worker_stale_owner_rejections_total.labels.operation
    ),
    commands_processed: sum(
      "open_cowork_cloud_worker_commands_processed_total",
      "status",
      MetricsCatalog.open_cowork_cloud_worker_commands_processed_total.labels.status
    )
  })

  const exposition = metrics.exposition

  return handlers.handleAll({
    runtimeStatus: () => Effect.map(listHeartbeats, runtimeStatus),
    heartbeats: () => Effect.map(listHeartbeats, (list) => ({ heartbeats: list })),
    diagnostics: () =>
      Effect.gen(function*() {
        const beats = yield* listHeartbeats
        // An org operator's queue figures are its own org's; the platform operator's are every org's.
        const backlog = yield* queue.backlog(QUEUE_SCAN_LIMIT, yield* callerOrg)
        const maxLag = yield* projections.maxLag
        const census = yield* status.leaseCensus
        const readiness = yield* WebReadiness.report
        const bundle: Diagnostics = {
          generatedAt: new Date().toISOString(),
          redaction: "secrets-redacted",
          runtime: {
            ...runtimeStatus(beats),
            version: SERVICE_VERSION,
            nodeVersion: process.version,
            uptimeSeconds: Math.round(process.uptime())
          },
          readiness,
          heartbeats: beats,
          queues: {
            depthEstimate: backlog.depthEstimate,
            depthCapped: backlog.capped,
            scanLimit: QUEUE_SCAN_LIMIT,
            oldestCommandAgeMs: Math.round(backlog.oldestAgeMs),
            maxProjectionLagEvents: maxLag
          },
          leases: { ...census, counters: yield* counters },
          byok: yield* Effect.gen(function*() {
            const orgId = yield* callerOrg
            const providers = orgId === undefined ? [] : yield* byokStore.list(orgId)
            return {
              status: providers.length > 0 ? "configured" : "not_configured",
              providers,
              note: "the caller's org keys, metadata only (provider, last4, fingerprint, status, health, updatedAt)"
            }
          }),
          gateway: yield* Effect.gen(function*() {
            const deliveries = yield* deliveryFeed.countsByStatus(yield* callerOrg)
            const total = Object.values(deliveries).reduce((a, b) => a + b, 0)
            return {
              status: total > 0 ? "active" : "not_configured",
              note: "channel deliveries by status; gateway processes report their own /diagnostics",
              deliveries
            }
          }),
          links: {
            runtimeStatus: "/api/runtime/status",
            heartbeats: "/api/workers/heartbeats",
            metrics: "/api/metrics",
            readiness: "/readyz",
            projectionStatus: "/api/sessions/{id}/projection-status",
            runbook: "docs/runbooks/operations.md"
          }
        }
        return redactDeep(bundle) as Diagnostics
      }).pipe(
        Effect.provideService(WebLifecycle, lifecycle),
        Effect.provideService(ControlPlaneStatus, status),
        Effect.provideService(ChangeFeed, feed)
      ),
    apiMetrics: () => exposition,
    metrics: () => exposition,
    projectionStatus: ({ params }) => Effect.andThen(ownSession(params.id), projections.status(params.id)),
    projectionRepair: ({ params }) => Effect.andThen(ownSession(params.id), projections.repair(params.id))
  })
}))
