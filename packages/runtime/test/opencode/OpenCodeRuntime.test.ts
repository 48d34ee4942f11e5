import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { FakeModelServer, OpenCodeRuntime } from "@cowork/runtime"
import { AgentRuntime, type RuntimeEvent, type RuntimeSession } from "@cowork/services"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"

/** The real opencode binary, offline, against the fake model server on loopback. */

let fake: FakeModelServer.FakeModelServer
let root: string

beforeAll(async () => {
  fake = await FakeModelServer.start()
  root = mkdtempSync(path.join(tmpdir(), "cowork-opencode-"))
})
afterAll(async () => {
  await fake?.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

const runtimeLayer = (permission?: Record<string, unknown>) =>
  Layer.suspend(() =>
    OpenCodeRuntime.layer({
      root,
      permission,
      endpoint: OpenCodeRuntime.staticEndpoint({ baseURL: fake.url, model: "fake-model" })
    })
  )

const collect = (session: RuntimeSession, text: string, commandId = `cmd_${Math.random().toString(36).slice(2)}`) =>
  Stream.runCollect(session.prompt({ commandId, text, attempt: 1 }))

const ofTag = <T extends RuntimeEvent["_tag"]>(events: ReadonlyArray<RuntimeEvent>, tag: T) =>
  events.filter((e): e is Extract<RuntimeEvent, { _tag: T }> => e._tag === tag)

const TIMEOUT = 120_000

describe("OpenCodeRuntime (real opencode, fake model)", () => {
  it.effect("streams deltas and a final message, counts usage, writes a file with a tool call, and aborts", () =>
    Effect.gen(function*() {
      const runtime = yield* AgentRuntime
      const session = yield* runtime.open("ses_stream")

      const first = yield* collect(session, "hello there [[chunks:4]]")
      const deltas = ofTag(first, "AssistantDelta")
      assert.isAtLeast(deltas.length, 1)
      const final = ofTag(first, "AssistantMessage")
      assert.strictEqual(final.length, 1)
      assert.strictEqual(final[0]!.text, "echo: hello there")
      assert.strictEqual(deltas.map((d) => d.delta).join(""), "echo: hello there")
      assert.isAtLeast(ofTag(first, "Usage").length, 1)
      assert.isAbove(ofTag(first, "Usage")[0]!.usage.input, 0)

      const tool = yield* collect(session, "make a file [[write:notes/a.txt]]")
      const calls = ofTag(tool, "ToolCall")
      assert.deepStrictEqual(calls.map((c) => c.status), ["running", "completed"])
      assert.strictEqual(calls[1]!.tool, "write")
      assert.strictEqual(ofTag(tool, "AssistantMessage").at(-1)!.text, "wrote notes/a.txt")
      const written = readFileSync(path.join(root, "sessions", "ses_stream", "work", "notes", "a.txt"), "utf8")
      assert.strictEqual(written, "written by the fake model\n")

      // Abort mid-stream: interrupt the turn after its first delta; the session stays usable.
      const firstDelta = yield* Deferred.make<void>()
      const slow = yield* session.prompt({ commandId: "cmd_slow", text: "long answer [[slow:400]] [[chunks:30]]", attempt: 1 }).pipe(
        Stream.tap((event) => event._tag === "AssistantDelta" ? Deferred.succeed(firstDelta, undefined) : Effect.void),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(firstDelta)
      const started = Date.now()
      yield* Fiber.interrupt(slow)
      assert.isBelow(Date.now() - started, 10_000)
      const after = yield* collect(session, "still there?")
      assert.strictEqual(ofTag(after, "AssistantMessage").at(-1)!.text, "echo: still there?")

      // No plugin install happened: the seeded config dirs hold only our linked package.
      const configDir = path.join(root, "sessions", "ses_stream", "opencode-config", "node_modules")
      assert.deepStrictEqual(readdirSync(configDir), ["@opencode-ai"])
    }).pipe(Effect.scoped, Effect.provide(runtimeLayer())), TIMEOUT)

  it.effect("asks for permission: once lets the tool run, reject ends the tool call", () =>
    Effect.gen(function*() {
      const runtime = yield* AgentRuntime
      const session = yield* runtime.open("ses_permission")
      const answer = (response: "once" | "reject") => (event: RuntimeEvent) =>
        event._tag === "PermissionRequested" ? session.respondPermission!(event.permissionId, response).pipe(Effect.orDie) : Effect.void

      const allowed = yield* session.prompt({ commandId: "cmd_allow", text: "[[write:allowed.txt]]", attempt: 1 }).pipe(
        Stream.tap(answer("once")),
        Stream.runCollect
      )
      const asked = ofTag(allowed, "PermissionRequested")
      assert.strictEqual(asked.length, 1)
      assert.strictEqual(asked[0]!.permission, "edit")
      assert.deepStrictEqual(ofTag(allowed, "ToolCall").map((c) => c.status), ["running", "completed"])
      assert.strictEqual(readFileSync(path.join(root, "sessions", "ses_permission", "work", "allowed.txt"), "utf8"), "written by the fake model\n")

      const rejected = yield* session.prompt({ commandId: "cmd_reject", text: "[[write:rejected.txt]]", attempt: 1 }).pipe(
        Stream.tap(answer("reject")),
        Stream.runCollect
      )
      assert.strictEqual(ofTag(rejected, "PermissionRequested").length, 1)
      assert.strictEqual(ofTag(rejected, "ToolCall").at(-1)!.status, "error")
      assert.isFalse(readdirSync(path.join(root, "sessions", "ses_permission", "work")).includes("rejected.txt"))
    }).pipe(Effect.scoped, Effect.provide(runtimeLayer({ edit: "ask" }))), TIMEOUT)

  it.effect("exported state restores into a fresh directory and the next prompt carries the history", () =>
    Effect.gen(function*() {
      const runtime = yield* AgentRuntime
      const state = yield* Effect.gen(function*() {
        const session = yield* runtime.open("ses_restore")
        yield* collect(session, "remember the word alpaca [[write:kept.txt]]")
        return yield* session.exportState
      }).pipe(Effect.scoped)
      const names = [...state.files.keys()]
      assert.include(names, "data/opencode/opencode.db")
      assert.include(names, "work/kept.txt")
      assert.include(names, "cowork-session.json")
      assert.isFalse(names.some((n) => n.endsWith("auth.json") || n.endsWith("opencode.db-wal") || n.startsWith("data/opencode/log")))

      // Another worker: nothing on disk, the state imported, same absolute path.
      rmSync(path.join(root, "sessions", "ses_restore"), { recursive: true, force: true })
      const before = fake.completions().length
      const text = yield* Effect.gen(function*() {
        const session = yield* runtime.open("ses_restore")
        yield* session.importState(state)
        const events = yield* collect(session, "what was the word?")
        return ofTag(events, "AssistantMessage").at(-1)!.text
      }).pipe(Effect.scoped)
      assert.strictEqual(text, "echo: what was the word?")
      const history = fake.completions().slice(before).map((r) => JSON.stringify(r.body.messages))
      assert.isTrue(history.some((m) => m.includes("remember the word alpaca") && m.includes("wrote kept.txt")))
      assert.strictEqual(readFileSync(path.join(root, "sessions", "ses_restore", "work", "kept.txt"), "utf8"), "written by the fake model\n")
    }).pipe(Effect.provide(runtimeLayer())), TIMEOUT)
})
