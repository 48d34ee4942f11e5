import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database } from "@cowork/postgres"
import { FakeModelServer } from "@cowork/runtime"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Crypto from "node:crypto"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { eventually, freePort, runCli, spawn, waitReady } from "../../../test/support/CoworkProcess.ts"
import { leasedCheckpoint } from "../../../test/support/LeasedCheckpoint.ts"

/**
 * The real thing end to end: `cowork web` + `cowork worker` processes with OPEN_COWORK_CLOUD_RUNTIME=opencode, the
 * org's key stored through the BYOK API, the fake provider on loopback. The worker is SIGKILLed mid-turn; a second
 * worker stops the opencode it left behind, restores the checkpoint at the same workspace path, re-runs the turn, and the next prompt's request to the model carries the earlier turns. The key reaches the provider on
 * every call and appears in no log and no checkpoint.
 */

const CANARY = `sk-canary-${Crypto.randomBytes(16).toString("hex")}`

/** Opencode children of a worker process (each in its own process group). */
const childrenOf = (pid: number): ReadonlyArray<number> => {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
      .split("\n").map((line) => Number(line.trim())).filter((n) => n > 0)
  } catch {
    return []
  }
}
const killGroups = (pids: ReadonlyArray<number>) => {
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // gone
      }
    }
  }
}

describe("opencode worker failover across processes", () => {
  it.live("SIGKILL mid-turn: another worker restores opencode's state and the conversation continues with history", () =>
    Effect.flatMap(freshDatabaseUrl, (url) => Effect.gen(function*() {
      const fake = yield* Effect.acquireRelease(Effect.promise(() => FakeModelServer.start()), (s) => Effect.promise(() => s.close()))
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-opencode-drill-"))
      const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_DATA_DIR: dataDir }
      yield* runCli(["migrate"], env)
      const token = (yield* runCli(["admin", "token", "create", "--scopes", "web,admin,operator", "--name", "drill"], env)).stdout.trim().split("\n").at(-1)!
      const port = yield* freePort
      const web = yield* spawn("web", ["web"], {
        ...env,
        OPEN_COWORK_CLOUD_PORT: String(port),
        OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
        OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP: "true",
        OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS: "127.0.0.1"
      })
      const baseUrl = `http://127.0.0.1:${port}`
      yield* waitReady(web, baseUrl)
      const workerEnv = (workerId: string, livenessPort: number) => ({
        ...env,
        OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
        OPEN_COWORK_CLOUD_WORKER_ID: workerId,
        OPEN_COWORK_CLOUD_LIVENESS_PORT: String(livenessPort),
        OPEN_COWORK_CLOUD_LEASE_TTL_MS: "3000",
        OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: "3000",
        OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500",
        OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "300",
        OPEN_COWORK_CLOUD_RUNTIME: "opencode",
        OPEN_COWORK_CLOUD_OPENCODE_MODEL: "fake-model",
        OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS: "127.0.0.1",
        // Both "machines" use the same absolute runtime root: opencode's rows name the workspace path.
        OPEN_COWORK_CLOUD_RUNTIME_ROOT: Path.join(dataDir, "runtime")
      })
      const spawned: Array<number> = []
      yield* Effect.addFinalizer(() => Effect.sync(() => killGroups(spawned)))

      const api = (method: string, path: string, body?: unknown) =>
        Effect.promise(async () => {
          const response = await fetch(`${baseUrl}${path}`, {
            method,
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body)
          })
          return { status: response.status, body: await response.json() as any }
        })
      assert.strictEqual((yield* api("POST", "/api/byok/openai", { apiKey: CANARY, baseUrl: fake.url })).status, 200)

      const first = yield* spawn("oc-w1", ["worker"], workerEnv("oc-w1", yield* freePort))
      const sql = yield* SqlClient.SqlClient
      const command = (id: string) =>
        Effect.map(
          sql<{ status: string; claimed_by: string | null }>`SELECT status, claimed_by FROM cloud_session_commands WHERE id = ${id}`.pipe(Effect.orDie),
          (rows) => rows[0]
        )
      const prompt = (sessionId: string, text: string) =>
        Effect.map(api("POST", `/api/sessions/${sessionId}/prompt`, { text }), (r) => r.body.commandId as string)
      const acked = (id: string, timeoutMs = 90_000) =>
        eventually(`${id} acked`, Effect.map(command(id), (row) => row?.status === "acked" ? row : undefined), { timeoutMs })

      const sessionId: string = (yield* api("POST", "/api/sessions", { title: "opencode drill" })).body.session.id
      const c1 = yield* prompt(sessionId, "remember the word alpaca [[write:alpaca.txt]]")
      yield* acked(c1)
      const status = yield* api("GET", "/api/runtime/status")
      assert.deepStrictEqual(status.body.runtime, { kinds: ["opencode"] })

      const c2 = yield* prompt(sessionId, "a long answer [[slow:400]] [[chunks:40]]")
      yield* eventually("the first worker streams the second turn", Effect.gen(function*() {
        const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_session_events
          WHERE session_id = ${sessionId} AND command_id = ${c2} AND type = 'assistant.message'`.pipe(Effect.orDie)
        return Number(rows[0]!.n) > 0 ? true : undefined
      }), { timeoutMs: 60_000 })
      const orphans = childrenOf(first.child.pid!)
      assert.isAtLeast(orphans.length, 1, "the worker runs opencode as its child")
      spawned.push(...orphans)
      first.child.kill("SIGKILL")
      assert.strictEqual(yield* Effect.promise(() => first.exited), "SIGKILL")
      // A SIGKILLed worker cannot stop its opencode: it keeps running on the session's directory until the next
      // worker on this host reaps it (pid file + same workspace) before restoring into that directory.
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0)
          return true
        } catch {
          return false
        }
      }
      assert.isTrue(orphans.some(alive))

      const second = yield* spawn("oc-w2", ["worker"], workerEnv("oc-w2", yield* freePort))
      yield* Effect.addFinalizer(() => Effect.sync(() => killGroups(childrenOf(second.child.pid!))))
      yield* acked(c2)
      yield* eventually("the orphaned opencode was reaped", Effect.sync(() => orphans.some(alive) ? undefined : true), { timeoutMs: 10_000 })
      const before = fake.completions().length
      const c3 = yield* prompt(sessionId, "what was the word?")
      const third = yield* acked(c3)
      assert.strictEqual(third.claimed_by, "oc-w2")

      // History survived: the model's request for the third turn carries the first turn and its tool call.
      const history = fake.completions().slice(before).map((r) => JSON.stringify(r.body.messages))
      assert.isTrue(history.some((m) => m.includes("remember the word alpaca") && m.includes("wrote alpaca.txt") && m.includes("what was the word?")))

      const view = yield* api("GET", `/api/sessions/${sessionId}/view`)
      const assistant: Array<string> = view.body.messages.filter((m: any) => m.role === "assistant").map((m: any) => m.text)
      assert.include(assistant, "wrote alpaca.txt")
      assert.include(assistant, "echo: a long answer")
      assert.strictEqual(assistant.at(-1), "echo: what was the word?")
      const types = yield* sql<{ type: string }>`SELECT DISTINCT type FROM cloud_session_events WHERE session_id = ${sessionId}`
      const seen = types.map((r) => r.type)
      for (const type of ["tool.call", "usage.recorded", "command.retried", "session.idle"]) assert.include(seen, type)

      // The key: on every model call, in no process output and no checkpoint.
      for (const request of fake.completions()) assert.strictEqual(request.headers.authorization, `Bearer ${CANARY}`)
      for (const proc of [web, first, second]) assert.notInclude(proc.output(), CANARY, proc.name)
      const { state } = yield* leasedCheckpoint(dataDir, sessionId)
      assert.isTrue(state.files.has("data/opencode/opencode.db"))
      assert.isTrue(state.files.has("work/alpaca.txt"))
      for (const [name, bytes] of state.files) assert.isFalse(Buffer.from(bytes).includes(CANARY), `checkpoint file ${name}`)
    }).pipe(
      Effect.scoped,
      Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 4, applicationName: "drill-inspector" }))
    )), { timeout: 300_000 })
})
