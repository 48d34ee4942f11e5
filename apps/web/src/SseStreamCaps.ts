import { Config, Context, Effect, Layer } from "effect"

export const DEFAULT_MAX_STREAMS_PER_ORG = 200
/** Seconds a client refused by the per-org cap should wait before retrying (`Retry-After`; `retryAfterMs` in the body). */
export const CAP_RETRY_AFTER_SECONDS = 5

/**
 * The per-org cap on SSE streams held open by this web process (`OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG`,
 * default 200; session, workspace and gateway delivery streams together). A stream takes a slot before its response is returned and
 * gives it back when the stream ends, however it ends.
 *
 * `context` is the process's context (its services, loggers and tracer, nothing of any request): what a session or
 * workspace stream's callbacks run with once its request has ended (`sseResponse`), so an open stream holds no copy
 * of its request's context.
 */
export class SseStreamCaps extends Context.Service<SseStreamCaps, {
  readonly maxPerOrg: number
  /** One of the org's slots, with its (idempotent) release; `undefined` when the org is at its cap. */
  readonly reserve: (orgId: string) => Effect.Effect<Effect.Effect<void> | undefined>
  /** Streams the org holds open on this process. */
  readonly open: (orgId: string) => Effect.Effect<number>
  readonly context: Context.Context<never>
}>()("cowork/web/SseStreamCaps") {
  static readonly make = (maxPerOrg: number) =>
    Effect.map(Effect.context<never>(), (context) => {
      const open = new Map<string, number>()
      return SseStreamCaps.of({
        maxPerOrg,
        context,
        reserve: (orgId) =>
          Effect.sync(() => {
            const held = open.get(orgId) ?? 0
            if (held >= maxPerOrg) return undefined
            open.set(orgId, held + 1)
            let released = false
            return Effect.sync(() => {
              if (released) return
              released = true
              const now = (open.get(orgId) ?? 1) - 1
              if (now <= 0) open.delete(orgId)
              else open.set(orgId, now)
            })
          }),
        open: (orgId) => Effect.sync(() => open.get(orgId) ?? 0)
      })
    })

  static readonly layer = Layer.effect(
    SseStreamCaps,
    Effect.flatMap(
      Config.Int("OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG").pipe(Config.withDefault(DEFAULT_MAX_STREAMS_PER_ORG)),
      SseStreamCaps.make
    )
  )
}
