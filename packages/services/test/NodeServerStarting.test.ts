import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AddressInfo } from "node:net"
import { makeServer } from "../src/NodeServer.ts"

it.live("a request before the routes are attached is answered 503 starting (never left hanging); then the routes answer", () =>
  Effect.acquireUseRelease(
    Effect.promise(() => {
      const server = makeServer({ requestTimeoutMs: 5_000, headersTimeoutMs: 5_000, keepAliveTimeoutMs: 1_000 })
      return new Promise<typeof server>((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)))
    }),
    (server) =>
      Effect.gen(function*() {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`
        const early = yield* Effect.promise(() => fetch(url, { signal: AbortSignal.timeout(5_000) }))
        assert.strictEqual(early.status, 503)
        assert.strictEqual(early.headers.get("retry-after"), "1")
        assert.strictEqual(early.headers.get("connection"), "close")
        assert.strictEqual(((yield* Effect.promise(() => early.json())) as { error: { code: string } }).error.code, "unavailable")
        server.on("request", (_request, response) => response.end("ready"))
        const later = yield* Effect.promise(() => fetch(url, { signal: AbortSignal.timeout(5_000) }))
        assert.strictEqual(later.status, 200)
        assert.strictEqual(yield* Effect.promise(() => later.text()), "ready")
      }),
    (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  ))
