export interface WorkerHeartbeat {
  readonly workerId: string
  readonly role: "worker" | "scheduler"
  readonly poolId: string | null
  readonly status: string
  readonly version: string
  readonly region: string | null
  readonly capabilities: ReadonlyArray<string>
  readonly currentLoad: number
  readonly activeWorkIds: ReadonlyArray<string>
  readonly lastSeenAt: string
  readonly ageMs: number
  readonly fresh: boolean
}

/** A heartbeat is current for this many heartbeat intervals: older means the process missed at least two beats. */
const HEARTBEAT_FRESH_INTERVALS = 3

/** How old a heartbeat may be and still count as fresh, for a heartbeat interval. */
export const heartbeatFreshWithinMs = (heartbeatIntervalMs: number): number => heartbeatIntervalMs * HEARTBEAT_FRESH_INTERVALS

/**
 * The freshness rule: a heartbeat is fresh when it is younger than `freshWithinMs` — or, when the row says how long
 * until its writer beats again (`intervalMs`: an idle worker beats less often), younger than that many intervals —
 * and the process did not say it stopped (its last beat on a clean shutdown is `stopped`; that process runs nothing,
 * however recent the beat).
 */
export const isHeartbeatFresh = (
  beat: { readonly ageMs: number; readonly status: string; readonly intervalMs?: number | null | undefined },
  freshWithinMs: number
): boolean =>
  beat.ageMs < (beat.intervalMs == null ? freshWithinMs : heartbeatFreshWithinMs(beat.intervalMs)) && beat.status !== "stopped"

/** Statuses age cannot change: the process said it stopped, or its registration ended. */
const FINAL_HEARTBEAT_STATUSES: ReadonlyArray<string> = ["stopped", "retired", "revoked"]

/**
 * A stored heartbeat as every read shows it. A row that is no longer fresh and has no final status belongs to a
 * process that stopped beating without saying so (crashed, killed, partitioned): it reads `unhealthy`, with no
 * load and no active work (its last list is stale: the reaper hands that work to others).
 */
export const observedHeartbeat = (
  stored: Omit<WorkerHeartbeat, "fresh"> & { readonly intervalMs?: number | null | undefined },
  freshWithinMs: number
): WorkerHeartbeat => {
  const { intervalMs, ...row } = stored
  const fresh = isHeartbeatFresh({ ...row, intervalMs }, freshWithinMs)
  return fresh || FINAL_HEARTBEAT_STATUSES.includes(row.status)
    ? { ...row, fresh }
    : { ...row, status: "unhealthy", currentLoad: 0, activeWorkIds: [], fresh }
}
