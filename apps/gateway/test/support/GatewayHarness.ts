import { makeProviders } from "@cowork/channels"
import { GatewayConfig, type GatewaySettings, GatewayRole } from "@cowork/gateway"
import { Logging, Metrics } from "@cowork/observability"
import * as Net from "node:net"
import { Context, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import type { MemoryCloud } from "./MemoryCloud.ts"

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

export const ADMIN_TOKEN = "gateway-admin-canary-7f3e"

export interface RunningGateway {
  readonly url: string
  readonly metrics: Metrics["Service"]
  readonly stop: () => Promise<void>
  readonly admin: Record<string, string>
}

/** Starts the gateway role in this process against a memory cloud; `stop()` closes its scope (the graceful drain). */
export const startGateway = async (
  cloud: MemoryCloud,
  providersJson: ReadonlyArray<unknown>,
  env: Record<string, string>,
  overrides: Partial<GatewaySettings> = {},
  /** Every log line of the gateway (redacted JSON, as deployed) is appended here when given. */
  logs?: Array<string>
): Promise<RunningGateway> => {
  const port = await freePort()
  const scope = Effect.runSync(Scope.make())
  const metricsLayer = Metrics.layerTest("gateway")
  const layer = Layer.mergeAll(GatewayRole.layer, metricsLayer).pipe(
    Layer.provide(GatewayConfig.layerTest({
      providers: makeProviders(JSON.stringify(providersJson), env),
      port,
      adminToken: Option.some(Redacted.make(ADMIN_TOKEN)),
      pollIntervalMs: 200,
      ...overrides
    })),
    Layer.provide(cloud.layer()),
    Layer.provideMerge(metricsLayer),
    Layer.provide(logs === undefined ? Layer.empty : Logging.layerTo("gateway", (line) => logs.push(line)))
  )
  // A gateway that fails to start releases what it had acquired (its server, its fibers) before the error surfaces.
  const context = await Effect.runPromise(
    Layer.buildWithScope(layer, scope).pipe(Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))))
  )
  const metrics = Context.get(context, Metrics)
  return {
    url: `http://127.0.0.1:${port}`,
    metrics,
    admin: { authorization: `Bearer ${ADMIN_TOKEN}` },
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
