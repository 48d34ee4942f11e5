import { type QuotaName, RateLimited } from "@cowork/domain"

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
