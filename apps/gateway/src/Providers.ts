import { type ChannelProvider, type ConfiguredProvider, PROVIDER_STATES, type ProviderState, type SendOutcome } from "@cowork/channels"
import { Metrics } from "@cowork/observability"
import { Clock, Context, Effect, Layer, Ref, Schedule } from "effect"
import { GatewayConfig } from "./GatewayConfig.ts"

export interface ProviderStatus {
  readonly id: string
  readonly kind: ChannelProvider["kind"]
  readonly state: ProviderState
  /** Why the provider is not healthy (redacted by the provider), or null. */
  readonly detail: string | null
  readonly started: boolean
  readonly changedAt: string
}

/** A provider can carry deliveries in these states. */
export const usable = (state: ProviderState): boolean => state === "healthy" || state === "degraded"

/** The configured providers and their states (`open_cowork_gateway_provider_state{state}` follows every change). */
export class Providers extends Context.Service<Providers, {
  readonly get: (id: string) => ChannelProvider | undefined
  readonly list: ReadonlyArray<ConfiguredProvider>
  readonly statuses: Effect.Effect<ReadonlyArray<ProviderStatus>>
  /** Moves the provider's state after a send or a probe. */
  readonly record: (id: string, outcome: SendOutcome) => Effect.Effect<void>
  /** Every credential the providers hold: never in an answer, a log line or a metric. */
  readonly secrets: ReadonlyArray<string>
}>()("cowork/gateway/Providers") {
  static readonly layer = Layer.effect(
    Providers,
    Effect.gen(function*() {
      const config = yield* GatewayConfig
      const metrics = yield* Metrics
      const byId = new Map(config.providers.map((entry) => [entry.config.id, entry]))
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())
      const states = yield* Ref.make(new Map<string, ProviderStatus>())

      const setState = (id: string, state: ProviderState, detail: string | null) =>
        Effect.gen(function*() {
          const entry = byId.get(id)
          if (entry === undefined) return
          const previous = (yield* Ref.get(states)).get(id)
          if (previous !== undefined && previous.state === state && previous.detail === detail) return
          const changedAt = yield* now
          yield* Ref.update(states, (map) =>
            new Map(map).set(id, { id, kind: entry.config.kind, state, detail, started: state !== "starting", changedAt }))
          for (const candidate of PROVIDER_STATES) {
            yield* metrics.set("open_cowork_gateway_provider_state", { provider_id: id, provider_kind: entry.config.kind, state: candidate }, candidate === state ? 1 : 0)
          }
          if (previous !== undefined && previous.state !== state) {
            yield* Effect.logInfo("provider state changed").pipe(Effect.annotateLogs({ provider_id: id, from: previous.state, to: state }))
          }
        })

      for (const entry of config.providers) {
        yield* setState(entry.config.id, "starting", null)
        const labels = { provider_id: entry.config.id, provider_kind: entry.config.kind }
        yield* metrics.inc("open_cowork_gateway_provider_deliveries_sent_total", labels, 0)
        yield* metrics.inc("open_cowork_gateway_provider_delivery_retries_total", labels, 0)
        yield* metrics.inc("open_cowork_gateway_provider_delivery_dead_letters_total", labels, 0)
        yield* metrics.inc("open_cowork_gateway_provider_incoming_messages_total", labels, 0)
      }
      yield* metrics.set("open_cowork_gateway_providers", config.providers.length)

      const record = (id: string, outcome: SendOutcome) => {
        switch (outcome._tag) {
          case "Sent":
            return setState(id, "healthy", null)
          case "Failed":
            return setState(id, "degraded", outcome.error)
          case "Dead":
            // A bad target is the binding's problem, not the provider's; a refused credential is the provider's.
            return outcome.authFailed ? setState(id, "auth_failed", outcome.error) : Effect.void
        }
      }

      const probe = (entry: ConfiguredProvider) =>
        Effect.flatMap(entry.provider.probe, (outcome) =>
          outcome._tag === "Sent"
            ? setState(entry.config.id, "healthy", null)
            : outcome._tag === "Dead" && outcome.authFailed
            ? setState(entry.config.id, "auth_failed", outcome.error)
            : Effect.andThen(metrics.inc("open_cowork_gateway_errors_total", { operation: "probe" }), setState(entry.config.id, "down", outcome.error)))

      // Probe at start and again every interval (a rotated credential or a recovered provider is noticed).
      yield* Effect.forkScoped(
        Effect.forEach(config.providers, probe, { concurrency: "unbounded", discard: true }).pipe(
          Effect.repeat(Schedule.spaced(`${config.probeIntervalMs} millis`))
        )
      )
      yield* Effect.addFinalizer(() => Effect.forEach(config.providers, (entry) => entry.provider.close, { discard: true }))

      return Providers.of({
        get: (id) => byId.get(id)?.provider,
        list: config.providers,
        statuses: Effect.map(Ref.get(states), (map) => config.providers.map((entry) => map.get(entry.config.id)!)),
        record,
        secrets: config.providers.flatMap((entry) => entry.provider.secrets)
      })
    })
  )
}
