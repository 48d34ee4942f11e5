/**
 * How many sessions the claimer (`$1`, asking for `$2`) may take now. An unmanaged worker (no registration and
 * no credential, `$5` null) may take `$2`. A managed one must be `active` in an `active` pool and present a
 * credential (`$5` id, `$6` secret hash) that is unrevoked and unexpired; then the pool's `max_concurrent_work`
 * (live leases held by its workers) caps the count, and a worker not yet holding work gets none when
 * `max_workers` of the pool's workers already do. A pool that belongs to an org (self-hosted) serves only that org:
 * `tenant` names it, and the candidates are that org's sessions.
 */
export const ALLOWANCE = `
  registered AS (SELECT 1 FROM cloud_workers w WHERE w.id = $1),
  managed AS (
    SELECT p.id AS pool_id, p.max_workers, p.max_concurrent_work, p.org_id
    FROM cloud_workers w
    JOIN cloud_worker_pools p ON p.id = w.pool_id
    JOIN cloud_worker_credentials c ON c.worker_id = w.id
    WHERE w.id = $1 AND w.status = 'active' AND p.status = 'active'
      AND c.id = $5 AND c.secret_hash = $6 AND c.revoked_at IS NULL AND c.expires_at > clock_timestamp()
  ),
  pool_load AS (
    SELECT count(*)::int AS live_work,
      count(DISTINCT l.worker_id)::int AS working,
      coalesce(bool_or(l.worker_id = $1), false) AS self_working
    FROM cloud_worker_leases l JOIN cloud_workers w ON w.id = l.worker_id
    WHERE w.pool_id = (SELECT pool_id FROM managed) AND l.expires_at > clock_timestamp()
  ),
  allowance AS (
    SELECT CASE
      WHEN $5::text IS NULL AND NOT EXISTS (SELECT 1 FROM registered) THEN $2::int
      WHEN NOT EXISTS (SELECT 1 FROM managed) THEN 0
      WHEN NOT pool_load.self_working AND pool_load.working >= managed.max_workers THEN 0
      ELSE greatest(0, least($2::int, managed.max_concurrent_work - pool_load.live_work))
    END AS n
    FROM pool_load LEFT JOIN managed ON true
  ),
  tenant AS (SELECT (SELECT org_id FROM managed) AS org_id),`
