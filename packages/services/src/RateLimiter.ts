import { Clock, Context, Effect, Layer } from "effect"

export interface BucketRule {
  /** Requests allowed in a burst, refilled evenly over `perMs`. */
  readonly limit: number
  readonly perMs: number
}

export interface BackoffRule {
  /** Failures within `windowMs` that block the source. */
  readonly maxFailures: number
  readonly windowMs: number
  readonly blockMs: number
}

/**
 * Per-process request limits (token buckets) and authentication back-off. Deliberately in memory: a limit is checked
 * on every request and must cost no database round trip; a deployment with N web replicas gives each 1/N of the
 * limit. Time comes from the Effect `Clock`.
 */
export class RateLimiter extends Context.Service<RateLimiter, {
  /** Takes one token from `key`'s bucket: `undefined` when allowed, else the milliseconds until one is free. */
  readonly take: (key: string, rule: BucketRule) => Effect.Effect<number | undefined>
  /** Counts a failure for `key`; at `maxFailures` within the window the key is blocked for `blockMs`. */
  readonly recordFailure: (key: string, rule: BackoffRule) => Effect.Effect<void>
  /** Milliseconds `key` stays blocked, or `undefined`. */
  readonly blockedFor: (key: string) => Effect.Effect<number | undefined>
}>()("cowork/RateLimiter") {
  static readonly layerMemory = Layer.sync(RateLimiter, () => makeMemoryRateLimiter())
}

/** Keys idle this long are swept, so the maps hold only recently active callers. */
const SWEEP_AFTER_MS = 10 * 60_000
const SWEEP_EVERY = 1_000

const makeMemoryRateLimiter = (): RateLimiter["Service"] => {
  const buckets = new Map<string, { tokens: number; at: number }>()
  const failures = new Map<string, { count: number; windowStart: number; blockedUntil: number }>()
  let operations = 0
  const sweep = (now: number) => {
    if (++operations % SWEEP_EVERY !== 0) return
    for (const [key, bucket] of buckets) if (now - bucket.at > SWEEP_AFTER_MS) buckets.delete(key)
    for (const [key, entry] of failures) {
      if (now - entry.windowStart > SWEEP_AFTER_MS && entry.blockedUntil <= now) failures.delete(key)
    }
  }
  return RateLimiter.of({
    take: (key, rule) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        const ratePerMs = rule.limit / rule.perMs
        const bucket = buckets.get(key) ?? { tokens: rule.limit, at: now }
        const tokens = Math.min(rule.limit, bucket.tokens + (now - bucket.at) * ratePerMs)
        if (tokens >= 1) {
          buckets.set(key, { tokens: tokens - 1, at: now })
          return undefined
        }
        buckets.set(key, { tokens, at: now })
        return Math.max(1, Math.ceil((1 - tokens) / ratePerMs))
      }),
    recordFailure: (key, rule) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        const entry = failures.get(key)
        const current = entry === undefined || now - entry.windowStart >= rule.windowMs
          ? { count: 0, windowStart: now, blockedUntil: entry?.blockedUntil ?? 0 }
          : entry
        current.count++
        if (current.count >= rule.maxFailures) {
          current.blockedUntil = now + rule.blockMs
          current.count = 0
          current.windowStart = now
        }
        failures.set(key, current)
      }),
    blockedFor: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const until = failures.get(key)?.blockedUntil ?? 0
        return until > now ? until - now : undefined
      })
  })
}
