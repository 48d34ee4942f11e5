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
