/** A fenced lease: every owner write is conditioned on `(sessionId, epoch)` still being live. */
export interface Lease {
  readonly sessionId: string
  readonly workerId: string
  readonly epoch: number
}
