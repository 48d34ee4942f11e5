/**
 * SQL conditions the worker service plane adds to the lease fence. Workers without a `cloud_workers` row are
 * unmanaged (the embedded all-in-one worker) and pass both.
 */

/** A revoked worker's writes are refused as a stale owner. `owner` is the SQL expression naming the lease's worker. */
export const notRevoked = (owner: string) =>
  `NOT EXISTS (SELECT 1 FROM cloud_workers rw WHERE rw.id = ${owner} AND rw.status = 'revoked')`

/** Renewal needs an `active` or `draining` worker in a pool that is not `paused`. */
export const mayRenew = (owner: string) =>
  `NOT EXISTS (SELECT 1 FROM cloud_workers rw JOIN cloud_worker_pools rp ON rp.id = rw.pool_id
    WHERE rw.id = ${owner} AND (rw.status NOT IN ('active', 'draining') OR rp.status = 'paused'))`
