import { Metrics } from "@cowork/observability"
import type { ObjectStore } from "@cowork/services"
import { S3ObjectStore } from "@cowork/storage"
import { Context, Effect, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import S3rver from "s3rver"

export const TEST_BUCKET = "cowork-test"

/** A local S3-compatible server (s3rver) on a free port, speaking the real S3 protocol. */
export class LocalS3Server extends Context.Service<LocalS3Server, {
  readonly endpoint: string
  /** Stops the server and drops its open connections (the outage drill). */
  readonly stop: Effect.Effect<void>
}>()("cowork/test/LocalS3Server") {
  static readonly layer = Layer.effect(
    LocalS3Server,
    Effect.gen(function*() {
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-s3rver-"))
      let stopped = false
      const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: TEST_BUCKET }] })
      const address = yield* Effect.promise(() => server.run())
      const stop = Effect.promise(async () => {
        if (stopped) return
        stopped = true
        server.httpServer.closeAllConnections()
        await server.close()
      })
      yield* Effect.addFinalizer(() =>
        stop.pipe(Effect.andThen(Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))))
      )
      return { endpoint: `http://127.0.0.1:${address.port}`, stop }
    })
  )
}

/** S3 adapter settings for the local server; one SDK attempt per call so outage tests answer at once. */
export const settingsFor = (endpoint: string, prefix = "tenant-a/"): S3ObjectStore.S3Settings => ({
  bucket: TEST_BUCKET,
  prefix,
  region: "us-east-1",
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: Redacted.make("S3RVER") },
  maxAttempts: 1
})

/** The instrumented S3 store over a fresh local server, with the server and a test Metrics registry. */
export const s3StoreLayer = (prefix?: string): Layer.Layer<ObjectStore | Metrics | LocalS3Server> =>
  Layer.unwrap(Effect.map(LocalS3Server, (server) => S3ObjectStore.layer(settingsFor(server.endpoint, prefix)))).pipe(
    Layer.provideMerge(Layer.merge(LocalS3Server.layer, Metrics.layerTest("worker")))
  )
