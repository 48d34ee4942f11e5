import { makeProviders } from "@cowork/channels"
import { makeFetch } from "@cowork/client"
import { CloudClient, GatewayConfig, type GatewaySettings, GatewayRole } from "@cowork/gateway"
import { Metrics } from "@cowork/observability"
import { type DeliveryFeedOptions, Tokens } from "@cowork/services"
import { assert } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Redacted, References, Scope } from "effect"
import { HttpServer } from "effect/http"
import * as Net from "node:net"
import { memoryStack, startWorker as startMemoryWorker } from "../../../../test/support/MemoryStack.ts"
import { testScope } from "../../../../test/support/TestScope.ts"

/**
 * The web and worker roles on the memory stack (the scripted runtime answers `echo: <text>`) with gateways started in
 * this process against the web role's HTTP API, as a deployed gateway talks to it.
 */
/** The cloud with the server's delivery rules (attempt cap, backoff) set for a test. */
export const cloudLayer = (feed: Partial<DeliveryFeedOptions> = {}) => memoryStack("gateway", { deliveryFeed: feed })

export const CloudLayer = cloudLayer()

/** A worker that also polls every second (a gateway test's backstop). */
export const startWorker = (workerId: string) => startMemoryWorker(workerId, 1_000)

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

export interface JsonAnswer {
  readonly status: number
  readonly body: any
}

export const http = (method: string, url: string, token: string | undefined, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async (): Promise<JsonAnswer> => {
    const response = await fetch(url, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body)
    })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === "" ? undefined : JSON.parse(text)
    } catch {
      parsed = text
    }
    return { status: response.status, body: parsed }
  })

// The fake receivers listen on loopback: the in-process web (binding create) allows it like the gateways below.
process.env.OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS = "127.0.0.1"

/** A fresh org with an admin token, its base URL and typed client. */
export const orgAdmin = Effect.gen(function*() {
  const tokens = yield* Tokens
  const { orgId } = yield* tokens.createOrg(`gw-${globalThis.crypto.randomUUID().slice(0, 8)}`)
  const token = Redacted.value((yield* tokens.issue({ orgId, name: "admin", scopes: ["web", "admin"] })).token)
  const server = yield* HttpServer.HttpServer
  const url = server.address._tag === "UnixPathAddress" ? assert.fail("expected a TCP address") : `http://127.0.0.1:${server.address.port}`
  const api = yield* makeFetch({ baseUrl: url, token })
  return { orgId, token, url, api }
})

export const createBinding = (url: string, token: string, body: Record<string, unknown>) =>
  Effect.gen(function*() {
    const created = yield* http("POST", `${url}/api/channels/bindings`, token, { displayName: String(body.providerId), ...body })
    assert.strictEqual(created.status, 201, JSON.stringify(created.body))
    return created.body.binding as { id: string; providerId: string; externalTarget: string }
  })

export const issueGatewayToken = (url: string, token: string, channelBindingIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const issued = yield* http("POST", `${url}/api/channels/gateway-tokens`, token, { name: "gateway", channelBindingIds })
    assert.strictEqual(issued.status, 201, JSON.stringify(issued.body))
    return issued.body.secret as string
  })

export const GATEWAY_ADMIN = "gw-admin-canary-91d2"

interface Gateway {
  readonly url: string
  readonly admin: Record<string, string>
  readonly metrics: Metrics["Service"]
  readonly stop: Effect.Effect<void>
}

/** A gateway in this process: its own metrics registry and scope (closed with the test's), the web role reached over HTTP with `token`. */
export const startGateway = (
  cloudUrl: string,
  token: string,
  providers: ReadonlyArray<unknown>,
  env: Record<string, string>,
  overrides: Partial<GatewaySettings> = {}
) =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(freePort)
    const scope = yield* testScope
    const metrics = Metrics.layerTest("gateway")
    const config = GatewayConfig.layerTest({
      // The fake receivers listen on loopback, which webhook targets may reach only when the operator allows it.
      providers: makeProviders(JSON.stringify(providers), { OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1", ...env }),
      cloudUrl,
      token: Redacted.make(token),
      adminToken: Option.some(Redacted.make(GATEWAY_ADMIN)),
      port,
      pollIntervalMs: 1_000,
      claimTtlMs: 5_000,
      secretEnv: env,
      ...overrides
    })
    const context = yield* Layer.buildWithScope(
      Layer.mergeAll(GatewayRole.layer, metrics).pipe(
        Layer.provide(CloudClient.layer),
        Layer.provideMerge(config),
        Layer.provideMerge(metrics),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
      ),
      scope
    )
    return {
      url: `http://127.0.0.1:${port}`,
      admin: { authorization: `Bearer ${GATEWAY_ADMIN}` },
      metrics: Context.get(context, Metrics),
      stop: Scope.close(scope, Exit.void)
    } satisfies Gateway
  })

/** Polls `check` (real time) until it returns a value; fails naming `what` after the deadline. */
export const until = <A>(what: string, check: Effect.Effect<A | undefined>, timeoutMs = 20_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep(50)
    }
    return assert.fail(`not within ${timeoutMs} ms: ${what}`)
  })
