import { Metrics } from "@cowork/observability"
import { PgDeploymentMarkers } from "@cowork/postgres"
import { NOT_THE_DEPLOYMENTS_KEY, secretAdapterCheck } from "@cowork/secrets"
import { ChangeFeed, ObjectStore, SecretAdapter } from "@cowork/services"
import { NOT_THE_DEPLOYMENTS_STORE, objectStoreCheck } from "@cowork/storage"
import { WorkerConfig, WorkerLiveness, WorkerStatus } from "@cowork/worker"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { silentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

let listenerUp = true
const FlakyChangeFeed = Layer.succeed(ChangeFeed, silentChangeFeed({
  listeners: Effect.sync(() => [{ channel: "cowork_commands", connected: listenerUp }])
}))

/** The worker's liveness server on a fresh database, with its own object store and secret key. */
const server = () =>
  HttpRouter.serve(WorkerLiveness.routes, { disableLogger: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })),
    Layer.provideMerge(Layer.mergeAll(
      WorkerConfig.layerWith({}),
      WorkerStatus.layer,
      Metrics.layerTest("worker"),
      FlakyChangeFeed,
      ObjectStore.layerMemory,
      SecretAdapter.layerMemory,
      PgDeploymentMarkers.layer
    )),
    Layer.provideMerge(TestDatabase.layer())
  )

const get = (path: string) =>
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const port = (server.address as { port: number }).port
    return yield* Effect.promise(async () => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`)
      return { status: response.status, text: await response.text() }
    })
  })

it.layer(server(), { excludeTestServices: true })("worker liveness server", (it) => {
  it.effect("livez, readyz (LISTEN state, then draining) and the catalog's metrics", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(JSON.parse((yield* get("/livez")).text), { ok: true, role: "worker", profileName: "default" })
      const ready = yield* get("/readyz")
      assert.strictEqual(ready.status, 200)
      assert.deepStrictEqual(JSON.parse(ready.text).checks, [
        { name: "control_plane", status: "ok" },
        { name: "role_dependencies", status: "ok" },
        { name: "object_store", status: "ok" },
        { name: "secret_adapter", status: "ok" }
      ])

      listenerUp = false
      const lost = yield* get("/readyz")
      assert.strictEqual(lost.status, 503)
      assert.deepInclude(JSON.parse(lost.text).checks, {
        name: "role_dependencies",
        status: "error",
        detail: "LISTEN connection down (cowork_commands); re-establishing"
      })
      listenerUp = true

      yield* Ref.set((yield* WorkerStatus).draining, true)
      const draining = yield* get("/readyz")
      assert.strictEqual(draining.status, 503)
      assert.deepInclude(JSON.parse(draining.text).checks, { name: "draining", status: "error", detail: "shutting down" })

      const metrics = yield* Metrics
      yield* metrics.inc("open_cowork_cloud_worker_lease_claims_total", 3)
      const scraped = yield* get("/metrics")
      assert.strictEqual(scraped.status, 200)
      assert.include(scraped.text, `open_cowork_cloud_worker_lease_claims_total{role="worker"} 3`)
      assert.include(scraped.text, "# TYPE open_cowork_cloud_command_queue_depth_estimate gauge")
    }))
})

it.layer(server(), { excludeTestServices: true })("worker liveness server of a split worker", (it) => {
  it.effect("an object store and a secret key other than the deployment's make /readyz 503 naming what to share", () =>
    Effect.gen(function*() {
      // The web role probed first, with its own store and key: they are the deployment's.
      const web = yield* Layer.build(Layer.fresh(Layer.merge(ObjectStore.layerMemory, SecretAdapter.layerMemory)))
      assert.strictEqual((yield* objectStoreCheck.pipe(Effect.provideContext(web))).status, "ok")
      assert.strictEqual((yield* secretAdapterCheck.pipe(Effect.provideContext(web))).status, "ok")

      const ready = yield* get("/readyz")
      assert.strictEqual(ready.status, 503)
      const checks = JSON.parse(ready.text).checks
      assert.deepInclude(checks, { name: "object_store", status: "error", detail: NOT_THE_DEPLOYMENTS_STORE })
      assert.deepInclude(checks, { name: "secret_adapter", status: "error", detail: NOT_THE_DEPLOYMENTS_KEY })
    }).pipe(Effect.scoped))
})
