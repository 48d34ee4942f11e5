import type { TokenScope } from "@cowork/domain"
import { makeFetch } from "@cowork/client"
import { Metrics } from "@cowork/observability"
import { NodeServer, Tokens } from "@cowork/services"
import { ConfigProvider, Effect, Layer, Redacted, References } from "effect"
import { HttpServer } from "effect/http"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../../../../test/support/TestDatabase.ts"
import * as WebRole from "../../src/WebRole.ts"

/** The web role on an ephemeral port over a fresh migrated database; exposes the services for seeding. */
export const serverLayer = WebRole.layerServe.pipe(
  // The production server settings (timeouts, parser errors in the error shape) on an ephemeral port.
  Layer.provideMerge(NodeServer.layerOn(0)),
  Layer.provideMerge(WebRole.layerPgServices),
  Layer.provideMerge(Metrics.layerTest("web")),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
  // The default object store (<data dir>/objects, probed by /readyz) goes under the OS temp dir, never the repo's
  // .cowork; a test that sets OPEN_COWORK_OBJECT_STORE_URI (or the data dir) in the environment still wins.
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-web-test-"))
  })))
)

export const layer = serverLayer.pipe(Layer.provideMerge(TestDatabase.layer()))

export const baseUrl = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const address = server.address
  if (address._tag === "UnixPathAddress") return yield* Effect.die(new Error("expected an internet address"))
  return `http://127.0.0.1:${address.port}`
})

/** The typed API client (packages/client) against this server, as `token`. */
export const client = (token?: string) => Effect.flatMap(baseUrl, (url) => makeFetch({ baseUrl: url, token }))

/** A fresh org with a token of the given scopes. */
export const orgWithToken = (scopes: ReadonlyArray<TokenScope> = ["web"]) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const { orgId } = yield* tokens.createOrg(`org-${globalThis.crypto.randomUUID().slice(0, 8)}`)
    const issued = yield* tokens.issue({ orgId, name: "test", scopes })
    return { orgId, token: Redacted.value(issued.token) }
  })

export interface JsonResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

export const request = (
  method: string,
  path: string,
  options: { readonly token?: string; readonly body?: unknown; readonly rawBody?: string; readonly headers?: Record<string, string> } = {}
) =>
  Effect.gen(function*() {
    const url = `${yield* baseUrl}${path}`
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    let body: string | undefined
    if (options.rawBody !== undefined) body = options.rawBody
    else if (options.body !== undefined) body = JSON.stringify(options.body)
    if (body !== undefined) headers["content-type"] ??= "application/json"
    return yield* Effect.promise(async (): Promise<JsonResponse> => {
      const response = await fetch(url, { method, headers, body })
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = text === "" ? undefined : JSON.parse(text)
      } catch {
        parsed = text
      }
      return { status: response.status, headers: response.headers, body: parsed }
    })
  })


/** A Telegram binding in the admin's org and a gateway token bound to it, both through the API (each must be 201). */
export const bindingWithGatewayToken = (adminToken: string) =>
  Effect.gen(function*() {
    const binding = yield* request("POST", "/api/channels/bindings", {
      token: adminToken,
      body: { providerKind: "telegram", providerId: "tg-main", displayName: "chat", externalTarget: "-1001", credentialRef: "file:telegram-bot-token" }
    })
    if (binding.status !== 201) return yield* Effect.die(new Error(`binding create: ${binding.status} ${JSON.stringify(binding.body)}`))
    const issued = yield* request("POST", "/api/channels/gateway-tokens", {
      token: adminToken,
      body: { name: "gw", channelBindingIds: [binding.body.binding.id] }
    })
    if (issued.status !== 201) return yield* Effect.die(new Error(`gateway token: ${issued.status} ${JSON.stringify(issued.body)}`))
    return { bindingId: binding.body.binding.id as string, gatewayToken: issued.body.secret as string }
  })

/** Another token of the given scopes in an existing org. */
export const tokenFor = (orgId: string, scopes: ReadonlyArray<"web" | "admin" | "operator" | "worker">) =>
  Effect.gen(function*() {
    const issued = yield* (yield* Tokens).issue({ orgId, name: "test", scopes })
    return Redacted.value(issued.token)
  }).pipe(Effect.orDie)

/** A platform operator token (bound to no org), as `cowork admin token create --platform --scopes operator` makes. */
export const platformToken = Effect.gen(function*() {
  const issued = yield* (yield* Tokens).issuePlatform({ name: "platform", scopes: ["operator"] })
  return Redacted.value(issued.token)
})
