/**
 * The live-lease fence, written once: the SQL condition every owner write (renew, release, expire, next command,
 * note error, event append) is conditioned on. Its memory twin is `liveLease` in packages/services MemoryFence.ts.
 */

/** A revoked registered worker's writes are refused as a stale owner. `owner` is the SQL expression naming the lease's worker. */
const notRevoked = (owner: string) =>
  `NOT EXISTS (SELECT 1 FROM cloud_workers rw WHERE rw.id = ${owner} AND rw.status = 'revoked')`

/**
 * `l` (a `cloud_worker_leases` row) is the live lease of `(session, epoch, worker)` — SQL parameters naming them —
 * unexpired by the database clock, and its worker is not revoked. Workers without a `cloud_workers` row are
 * unmanaged (the embedded all-in-one worker) and are never revoked.
 *
 * The lease is reached by its primary key, whatever the statistics say: the worker is compared with
 * `IS NOT DISTINCT FROM` (the same test for a non-null parameter) because `worker_id = $n` implies
 * `worker_id IS NOT NULL`, the predicate of the owned-leases indexes (`cloud_worker_leases_owned`,
 * `cloud_worker_leases_worker`). Analyzed while few leases were held (a large, quiet database), those indexes look
 * empty and the planner walked every held lease (and its dead index entries) with a filter on the session: work ∝
 * the leased sessions on every fenced write (issue 15 target 3). `notRevoked` names the parameter, so the worker's
 * row is read by its key too.
 */
export const liveLease = (session: string, epoch: string, worker: string) =>
  `l.session_id = ${session} AND l.epoch = ${epoch} AND l.worker_id IS NOT DISTINCT FROM ${worker}
    AND l.expires_at > clock_timestamp() AND ${notRevoked(worker)}`

/** Renewal needs an `active` or `draining` worker in a pool that is not `paused`. */
export const mayRenew = (owner: string) =>
  `NOT EXISTS (SELECT 1 FROM cloud_workers rw JOIN cloud_worker_pools rp ON rp.id = rw.pool_id
    WHERE rw.id = ${owner} AND (rw.status NOT IN ('active', 'draining') OR rp.status = 'paused'))`
