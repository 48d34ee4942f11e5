import { type QuotaName, RateLimited } from "@cowork/domain"
import { Effect } from "effect"

export const HOUR_MS = 3_600_000

/** A full queue drains at worker speed: a client told to wait this long finds room again without hammering. */
export const QUEUED_RETRY_AFTER_MS = 5_000

/** The one shape of a quota refusal: 429 with the quota's name and limit, and when to retry. */
export const quotaExceeded = (quota: QuotaName, limit: number, retryAfterMs: number) =>
  new RateLimited({
    message: `the organization's ${quota.replaceAll("_", " ")} quota (${limit}) is used up`,
    retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)),
    details: { quota, limit }
  })

/**
 * The memory twin of the Postgres `admitInWindow`: counts `amount` in the org's current clock-aligned window of
 * `windowMs` only while the total stays within `limit`, else `RateLimited` with the wait until the window ends.
 * `windows` is keyed by org and window start; an org's windows that ended over a day ago are dropped as it opens a new one.
 */
export const admitInMemoryWindow = (
  windows: Map<string, number>,
  orgId: string,
  quota: QuotaName,
  amount: number,
  limit: number,
  windowMs: number,
  now: number
): Effect.Effect<void, RateLimited> =>
  Effect.suspend(() => {
    const windowStart = Math.floor(now / windowMs) * windowMs
    const key = `${orgId}\u0000${windowStart}`
    const used = windows.get(key) ?? 0
    if (used + amount > limit) return Effect.fail(quotaExceeded(quota, limit, windowStart + windowMs - now))
    if (used === 0) {
      for (const other of windows.keys()) {
        const [otherOrg, start] = other.split("\u0000")
        if (otherOrg === orgId && Number(start) < now - windowMs - 24 * HOUR_MS) windows.delete(other)
      }
    }
    windows.set(key, used + amount)
    return Effect.void
  })
