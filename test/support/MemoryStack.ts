import { makeFetch } from "@cowork/client"
import { Metrics } from "@cowork/observability"
import { ScriptedRuntime } from "@cowork/runtime"
import {
  DeliveryFeed,
  type DeliveryFeedOptions,
  defaultDeliveryFeedOptions,
  layerMemoryControlPlane,
  SecretAdapter,
  Tokens
} from "@cowork/services"
import { CheckpointStore } from "@cowork/storage"
import * as WebRole from "@cowork/web"
import * as WorkerRole from "@cowork/worker"
import { WorkerConfig } from "@cowork/worker"
import { assert } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted, References } from "effect"
import { HttpServer } from "effect/http"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { testScope } from "./TestScope.ts"

/**
 * The web and worker roles on memory layers only (no Postgres, no object-store directory): the role layers
 * `cowork up` runs, over `layerMemoryControlPlane`, the scripted runtime, a memory secret adapter and the checkpoint
 * store. The web role listens on an ephemeral port with its data dir under `<tmp>/cowork-<name>-…`; `deliveryFeed`
 * sets the server's delivery rules (attempt cap, backoff) for a test.
 */
export const memoryStack = (name: string, options: { readonly deliveryFeed?: Partial<DeliveryFeedOptions> } = {}) => {
  const controlPlane = layerMemoryControlPlane.pipe(
    Layer.provideMerge(Layer.mergeAll(ScriptedRuntime.layer, SecretAdapter.layerMemory, Metrics.layerTest("all")))
  )
  const stores = options.deliveryFeed === undefined ? controlPlane : Layer.merge(
    controlPlane,
    DeliveryFeed.layerMemoryWith({ ...defaultDeliveryFeedOptions, ...options.deliveryFeed }).pipe(Layer.provide(controlPlane))
  )
  return WebRole.layerServeAs("all").pipe(
    Layer.provideMerge(WebRole.layerNodeServer),
    Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
      OPEN_COWORK_CLOUD_PORT: "0",
      OPEN_COWORK_DATA_DIR: Fs.mkdtempSync(Path.join(Os.tmpdir(), `cowork-${name}-`))
    }))),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
    Layer.provideMerge(CheckpointStore.layer.pipe(Layer.provideMerge(stores)))
  )
}

/** A worker of the stack in its own scope (closing it is its SIGTERM); by default it polls rarely, so work travels by signal. */
export const startWorker = (workerId: string, pollIntervalMs = 600_000) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ workerId, pollIntervalMs })),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
      ),
      scope
    )
    return scope
  })

/** The web role's base URL. */
export const baseUrl = Effect.map(Effect.service(HttpServer.HttpServer), (server) =>
  server.address._tag === "UnixPathAddress" ? assert.fail("expected a TCP address") : `http://127.0.0.1:${server.address.port}`)

/** A fresh org with a `web` token, and the typed API client as that token. */
export const orgClient = (orgName: string) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const { orgId } = yield* tokens.createOrg(orgName)
    const token = Redacted.value((yield* tokens.issue({ orgId, name: "test", scopes: ["web"] })).token)
    const url = yield* baseUrl
    const api = yield* makeFetch({ baseUrl: url, token })
    return { orgId, token, url, api }
  })
