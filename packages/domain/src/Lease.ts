/** A fenced lease: every owner write is conditioned on `(sessionId, epoch)` still being live. */
export interface Lease {
  readonly sessionId: string
  readonly workerId: string
  readonly epoch: number
  /** The session's last acknowledged checkpoint when the lease was claimed (0: none). */
  readonly checkpointVersion?: number | undefined
  /** The session's org, where the store knows it (checkpoint keys are per org). */
  readonly orgId?: string | undefined
}
