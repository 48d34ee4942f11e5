import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { OpenCodeRuntime } from "@cowork/runtime"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { sessionPaths } from "../src/OpenCodeProcess.ts"
import { testScope } from "../../../test/support/TestScope.ts"

/** A session's directory under the runtime root outlives its runtime only when nothing else holds its state. */
describe("OpenCodeRuntime session directories", () => {
  it.effect("closing a session marked discardOnClose deletes its directory; an unmarked one keeps it", () =>
    Effect.gen(function*() {
      const root = mkdtempSync(path.join(tmpdir(), "cowork-workdir-"))
      const runtime = yield* OpenCodeRuntime.make({
        root,
        binary: "/nonexistent/opencode",
        endpoint: OpenCodeRuntime.staticEndpoint({ baseURL: "http://127.0.0.1:1/v1", model: "none" })
      })
      const openWithFiles = (sessionId: string) =>
        Effect.gen(function*() {
          const scope = yield* testScope
          const session = yield* runtime.open(sessionId).pipe(Scope.provide(scope))
          const paths = sessionPaths(root, sessionId)
          mkdirSync(paths.work, { recursive: true })
          writeFileSync(path.join(paths.work, "notes.txt"), "work in progress")
          return { scope, session, paths }
        })

      const moved = yield* openWithFiles("ses_moved")
      yield* moved.session.discardOnClose!
      assert.isTrue(existsSync(moved.paths.work), "nothing is deleted while the session is open")
      yield* Scope.close(moved.scope, Exit.void)
      assert.isFalse(existsSync(moved.paths.base), "its checkpoint holds the state: the directory is gone")

      const kept = yield* openWithFiles("ses_kept")
      yield* Scope.close(kept.scope, Exit.void)
      assert.isTrue(existsSync(path.join(kept.paths.work, "notes.txt")), "without a checkpoint the files are the state")
      rmSync(root, { recursive: true, force: true })
    }))
})
