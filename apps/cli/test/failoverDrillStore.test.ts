import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runFailoverDrill } from "../src/ops/FailoverDrill.ts"
import { runCliExit } from "../../../test/support/CoworkProcess.ts"

/**
 * Which S3 `cowork drill failover` uses, refused before anything starts: an operator's `s3://` store needs an http
 * endpoint the drill can put its cutting proxy in front of. (The runs themselves are the `drills` project.)
 */
describe("cowork drill failover: the object store", () => {
  it.live("an s3:// OPEN_COWORK_OBJECT_STORE_URI without OPEN_COWORK_OBJECT_STORE_ENDPOINT is refused naming the variable", () =>
    Effect.gen(function*() {
      const result = yield* runCliExit(["drill", "failover", "--report", "/nonexistent/never-written.md"], {
        OPEN_COWORK_OBJECT_STORE_URI: "s3://drill-bucket/prefix"
      })
      const output = `${result.stdout}${result.stderr}`
      assert.strictEqual(result.code, 1, output)
      assert.include(output, "OPEN_COWORK_OBJECT_STORE_ENDPOINT is not set")
    }))

  it.live("an https endpoint is refused (the proxy cannot present its certificate)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.promise(() =>
        runFailoverDrill({ objectStore: { uri: "s3://drill-bucket/prefix", endpoint: "https://minio.example:9000" }, log: () => undefined })
          .then(() => undefined, (e: unknown) => e)
      )
      assert.instanceOf(error, Error)
      assert.include((error as Error).message, "must be http://host:port")
    }))
})
