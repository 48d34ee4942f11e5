import { makeFetch } from "@cowork/client"
import { Metrics } from "@cowork/observability"
import { FakeModelServer, OpenCodeRuntime } from "@cowork/runtime"
import { layerMemoryControlPlane, SecretAdapter, Tokens } from "@cowork/services"
import * as WebRole from "@cowork/web"
import { WorkerConfig } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Redacted, References, Scope } from "effect"
import { HttpServer } from "effect/http"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { connect, eventData } from "../../../test/support/SseClient.ts"
import { testScope } from "../../../test/support/TestScope.ts"

/**
 * Human in the loop with the real opencode binary (offline, the fake model on loopback, `permission.edit: ask`):
 * the web and worker roles in one process on memory layers. The fake model asks to write a file, opencode asks
 * permission, the answer goes through `POST /permission-respond` → the mailbox → the worker → opencode, and the turn
 * continues (or the tool call ends in error when rejected).
 */
const TIMEOUT = 180_000

describe("human in the loop with the real opencode runtime", () => {
  it.live("permission-respond once lets opencode write the file; reject ends the tool call", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.acquireRelease(Effect.promise(() => FakeModelServer.start()), (s) => Effect.promise(() => s.close()))
      const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-opencode-hitl-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(root, { recursive: true, force: true })))
      const runtime = OpenCodeRuntime.layer({
        root,
        permission: { edit: "ask" },
        endpoint: OpenCodeRuntime.staticEndpoint({ baseURL: fake.url, model: "fake-model" })
      })
      const stack = WebRole.layerServeAs("all").pipe(
        Layer.provideMerge(WebRole.layerNodeServer),
        Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ OPEN_COWORK_CLOUD_PORT: "0", OPEN_COWORK_DATA_DIR: root }))),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
        Layer.provideMerge(layerMemoryControlPlane),
        Layer.provideMerge(Layer.mergeAll(runtime, SecretAdapter.layerMemory, Metrics.layerTest("all")))
      )
      const context = yield* Layer.build(stack)
      yield* Effect.gen(function*() {
        const tokens = yield* Tokens
        const { orgId } = yield* tokens.createOrg("opencode hitl")
        const token = Redacted.value((yield* tokens.issue({ orgId, name: "test", scopes: ["web"] })).token)
        const server = yield* HttpServer.HttpServer
        const url = server.address._tag === "UnixPathAddress" ? assert.fail("expected a TCP address") : `http://127.0.0.1:${server.address.port}`
        const api = yield* makeFetch({ baseUrl: url, token })
        const post = (path: string, body: unknown) =>
          Effect.promise(() =>
            fetch(`${url}${path}`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
              body: JSON.stringify(body)
            }).then(async (r) => ({ status: r.status, body: await r.json() as any }))
          )
        const workerScope = yield* testScope
        yield* Layer.buildWithScope(
          WorkerRole.layerNoDeps.pipe(Layer.provide(WorkerConfig.layerWith({ workerId: "worker-opencode-hitl", pollIntervalMs: 600_000 }))),
          workerScope
        )
        const { session } = yield* api.sessions.create({ payload: { title: "opencode hitl" } })
        const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
        const idles = () => eventData(stream.frames()).filter((e) => e.type === "session.idle")
        const asks = () => eventData(stream.frames()).filter((e) => e.type === "permission.requested")

        const allowed = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "[[write:allowed.txt]]" } })
        yield* stream.waitFor(() => asks().length === 1, TIMEOUT)
        const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
        assert.strictEqual(view.pendingPermissions.length, 1)
        assert.strictEqual(view.pendingPermissions[0]!.permission, "edit")
        const permissionId = view.pendingPermissions[0]!.permissionId
        assert.strictEqual((yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId, response: "once" })).status, 202)
        yield* stream.waitFor(() => idles().length === 1, TIMEOUT)
        assert.deepInclude(idles()[0]!.payload as object, { commandId: allowed.commandId, outcome: "acked" })
        assert.strictEqual(Fs.readFileSync(Path.join(root, "sessions", session.id, "work", "allowed.txt"), "utf8"), "written by the fake model\n")
        const replied = eventData(stream.frames()).filter((e) => e.type === "permission.replied")
        assert.deepInclude(replied[0]!.payload as object, { permissionId, response: "once" })

        yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "[[write:rejected.txt]]" } })
        yield* stream.waitFor(() => asks().length === 2, TIMEOUT)
        const second = (asks()[1]!.payload as { permissionId: string }).permissionId
        assert.strictEqual((yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId: second, response: "reject" })).status, 202)
        yield* stream.waitFor(() => idles().length === 2, TIMEOUT)
        const tools = eventData(stream.frames()).filter((e) => e.type === "tool.call").map((e) => e.payload as { status: string })
        assert.strictEqual(tools.at(-1)!.status, "error")
        assert.isFalse(Fs.existsSync(Path.join(root, "sessions", session.id, "work", "rejected.txt")))
        const after = yield* api.sessions.view({ params: { id: session.id }, query: {} })
        assert.deepStrictEqual(after.pendingPermissions, [])
        yield* stream.close
        yield* Scope.close(workerScope, Exit.void)
      }).pipe(Effect.provide(context))
    }).pipe(Effect.scoped), TIMEOUT)
})
