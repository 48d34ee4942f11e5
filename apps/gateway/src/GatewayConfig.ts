import { type ConfiguredProvider, makeProviders, ProviderConfigError } from "@cowork/channels"
import { CREDENTIALS_DIR_VARIABLE } from "@cowork/domain"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"

/** The gateway's settings (OPEN_COWORK_GATEWAY_*; see the README's configuration table). */
export interface GatewaySettings {
  readonly gatewayId: string
  readonly host: string
  readonly port: number
  /** The web role's base URL (no trailing path). */
  readonly cloudUrl: string
  /** The `gateway`-scoped service token (`occ_...`). */
  readonly token: Redacted.Redacted<string>
  /** Guards /metrics, /diagnostics and /deliveries; unset, those routes answer 403 with the reason. */
  readonly adminToken: Option.Option<Redacted.Redacted<string>>
  readonly providers: ReadonlyArray<ConfiguredProvider>
  /** Deliveries claimed per request. */
  readonly claimBatch: number
  /** Deliveries sent at once. */
  readonly concurrency: number
  readonly claimTtlMs: number
  /** Claim poll when no push arrives. */
  readonly pollIntervalMs: number
  readonly probeIntervalMs: number
  readonly shutdownGraceMs: number
  readonly webhookRatePerMinute: number
  readonly maxBodyBytes: number
  /**
   * Inbound webhook requests handled at once (`OPEN_COWORK_GATEWAY_MAX_INBOUND_IN_FLIGHT`, default 256); one more is
   * answered 503 + Retry-After at once, so a slow cloud cannot pile up requests (and memory) without bound.
   */
  readonly maxInboundInFlight: number
  /** A binding's resolved `credentialRef` is resolved again once older than this (rotation without a restart). */
  readonly credentialTtlMs: number
  /** Where `env:` credential references are looked up (the process environment). */
  readonly secretEnv: Readonly<Record<string, string | undefined>>
  /**
   * `OPEN_COWORK_GATEWAY_CREDENTIALS_DIR`: a binding's `file:name` reference reads `<dir>/<orgId>/name` (absolute;
   * unset, `file:` references are refused).
   */
  readonly credentialsDir: string | undefined
}

export class GatewayConfigError extends Error {
  override readonly name = "GatewayConfigError"
}

export class GatewayConfig extends Context.Service<GatewayConfig, GatewaySettings>()("cowork/gateway/GatewayConfig") {
  static readonly layerConfig = Layer.effect(
    GatewayConfig,
    Effect.gen(function*() {
      const generated = `gw-${Os.hostname().slice(0, 40)}-${globalThis.crypto.randomUUID().slice(0, 8)}`
      const cloudUrl = yield* Config.String("OPEN_COWORK_GATEWAY_CLOUD_URL")
      const providersJson = yield* Config.String("OPEN_COWORK_GATEWAY_PROVIDERS").pipe(Config.withDefault("[]"))
      const providers = yield* Effect.try({
        try: () => makeProviders(providersJson),
        catch: (error) => new GatewayConfigError(error instanceof ProviderConfigError ? error.message : "OPEN_COWORK_GATEWAY_PROVIDERS is invalid")
      })
      const credentialsDir = Option.getOrUndefined(yield* Config.option(Config.String(CREDENTIALS_DIR_VARIABLE)))
      if (credentialsDir !== undefined && !Path.isAbsolute(credentialsDir)) {
        return yield* Effect.fail(new GatewayConfigError(`${CREDENTIALS_DIR_VARIABLE} must be an absolute path`))
      }
      return GatewayConfig.of({
        gatewayId: yield* Config.String("OPEN_COWORK_GATEWAY_ID").pipe(Config.withDefault(generated)),
        host: yield* Config.String("OPEN_COWORK_CLOUD_HOST").pipe(Config.withDefault("127.0.0.1")),
        port: yield* Config.Int("OPEN_COWORK_GATEWAY_PORT").pipe(Config.withDefault(8790)),
        cloudUrl: cloudUrl.replace(/\/+$/, ""),
        token: yield* Config.Redacted("OPEN_COWORK_GATEWAY_TOKEN"),
        adminToken: yield* Config.option(Config.Redacted("OPEN_COWORK_GATEWAY_ADMIN_TOKEN")),
        providers,
        claimBatch: yield* Config.Int("OPEN_COWORK_GATEWAY_CLAIM_BATCH").pipe(Config.withDefault(20)),
        concurrency: yield* Config.Int("OPEN_COWORK_GATEWAY_CONCURRENCY").pipe(Config.withDefault(16)),
        claimTtlMs: yield* Config.Int("OPEN_COWORK_GATEWAY_CLAIM_TTL_MS").pipe(Config.withDefault(30_000)),
        pollIntervalMs: yield* Config.Int("OPEN_COWORK_GATEWAY_POLL_INTERVAL_MS").pipe(Config.withDefault(5_000)),
        probeIntervalMs: yield* Config.Int("OPEN_COWORK_GATEWAY_PROBE_INTERVAL_MS").pipe(Config.withDefault(60_000)),
        shutdownGraceMs: yield* Config.Int("OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS").pipe(Config.withDefault(30_000)),
        webhookRatePerMinute: yield* Config.Int("OPEN_COWORK_GATEWAY_WEBHOOK_RATE_PER_MINUTE").pipe(Config.withDefault(600)),
        maxBodyBytes: 1024 * 1024,
        maxInboundInFlight: yield* Config.Int("OPEN_COWORK_GATEWAY_MAX_INBOUND_IN_FLIGHT").pipe(Config.withDefault(256)),
        credentialTtlMs: yield* Config.Int("OPEN_COWORK_GATEWAY_CREDENTIAL_TTL_MS").pipe(Config.withDefault(60_000)),
        secretEnv: process.env,
        credentialsDir
      })
    })
  )

  static readonly layerTest = (overrides: Partial<GatewaySettings> & Pick<GatewaySettings, "providers">) =>
    Layer.succeed(GatewayConfig, GatewayConfig.of({
      gatewayId: `gw-test-${globalThis.crypto.randomUUID().slice(0, 8)}`,
      host: "127.0.0.1",
      port: 0,
      cloudUrl: "http://127.0.0.1:1",
      token: Redacted.make("occ_test_gateway"),
      adminToken: Option.some(Redacted.make("gateway-admin-test")),
      claimBatch: 20,
      concurrency: 16,
      claimTtlMs: 30_000,
      pollIntervalMs: 1_000,
      probeIntervalMs: 60_000,
      shutdownGraceMs: 5_000,
      webhookRatePerMinute: 600,
      maxBodyBytes: 1024 * 1024,
      maxInboundInFlight: 256,
      credentialTtlMs: 60_000,
      secretEnv: {},
      credentialsDir: undefined,
      ...overrides
    }))
}
