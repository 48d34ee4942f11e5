import { makeFetch } from "@cowork/client"
import { Database } from "@cowork/postgres"
import { ScriptedRuntime } from "@cowork/runtime"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { eventually, freePort, runCli, spawn, waitReady } from "../../../test/support/CoworkProcess.ts"
import { leasedCheckpoint } from "../../../test/support/LeasedCheckpoint.ts"

/**
 * Checkpoint failover with real processes: a session whose runtime state has files runs on one worker, which is
 * SIGKILLed mid-command; a second worker restores the checkpoint from the shared object store and continues.
 */

const workerEnv = (base: Record<string, string>, workerId: string, livenessPort: number) => ({
  ...base,
  OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false",
  OPEN_COWORK_CLOUD_WORKER_ID: workerId,
  OPEN_COWORK_CLOUD_LIVENESS_PORT: String(livenessPort),
  OPEN_COWORK_CLOUD_LEASE_TTL_MS: "1500",
  OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: "3000",
  OPEN_COWORK_CLOUD_HEARTBEAT_INTERVAL_MS: "500",
  OPEN_COWORK_CLOUD_POLL_INTERVAL_MS: "300"
})

/** The annotations of every JSON log line with this message. */
const logLines = (output: string, message: string) =>
  output.split("\n").flatMap((line) => {
    if (!line.includes(message)) return []
    try {
      const parsed = JSON.parse(line)
      return parsed.message === message ? [parsed] : []
    } catch {
      return []
    }
  })

describe("checkpoint failover across processes", () => {
  it.live("SIGKILL mid-command: the second worker restores the files, re-runs, and writes one object per save", () =>
    Effect.flatMap(freshDatabaseUrl, (url) => Effect.gen(function*() {
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-checkpoint-drill-"))
      const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_DATA_DIR: dataDir }
      yield* runCli(["migrate"], env)
      const token = (yield* runCli(["admin", "token", "create", "--scopes", "web,operator", "--name", "drill"], env)).stdout.trim().split("\n").at(-1)!
      const port = yield* freePort
      const web = yield* spawn("web", ["web"], { ...env, OPEN_COWORK_CLOUD_PORT: String(port), OPEN_COWORK_CLOUD_RUN_MIGRATIONS: "false" })
      const baseUrl = `http://127.0.0.1:${port}`
      yield* waitReady(web, baseUrl)
      const first = yield* spawn("ckpt-w1", ["worker"], workerEnv(env, "ckpt-w1", yield* freePort))

      const api = yield* makeFetch({ baseUrl, token })
      const sql = yield* SqlClient.SqlClient
      const command = (id: string) =>
        Effect.map(
          sql<{ status: string; claimed_by: string | null }>`SELECT status, claimed_by FROM cloud_session_commands WHERE id = ${id}`.pipe(Effect.orDie),
          (rows) => rows[0]
        )
      const prompt = (sessionId: string, text: string) =>
        Effect.map(api.sessions.prompt({ params: { id: sessionId }, payload: { text } }).pipe(Effect.orDie), (r) => r.commandId)
      const acked = (id: string, timeoutMs = 30_000) =>
        eventually(`${id} acked`, Effect.map(command(id), (row) => row?.status === "acked" ? row : undefined), { timeoutMs })

      const sessionId = (yield* api.sessions.create({ payload: { title: "checkpoint drill" } }).pipe(Effect.orDie)).session.id
      const c1 = yield* prompt(sessionId, "[[file:notes.txt]] alpha")
      yield* acked(c1)
      const c2 = yield* prompt(sessionId, "[[slow:300]] [[events:12]] second")
      yield* eventually("the first worker runs the second command", Effect.map(command(c2), (row) =>
        row?.status === "running" && row.claimed_by === "ckpt-w1" ? true : undefined), { timeoutMs: 15_000 })
      first.child.kill("SIGKILL")
      assert.strictEqual(yield* Effect.promise(() => first.exited), "SIGKILL")

      const second = yield* spawn("ckpt-w2", ["worker"], workerEnv(env, "ckpt-w2", yield* freePort))
      yield* acked(c2)
      const c3 = yield* prompt(sessionId, "third")
      const third = yield* acked(c3)
      assert.strictEqual(third.claimed_by, "ckpt-w2")

      const view = yield* api.sessions.view({ params: { id: sessionId }, query: {} }).pipe(Effect.orDie)
      const assistant = view.messages.filter((m) => m.role === "assistant").map((m) => m.text)
      assert.deepStrictEqual(assistant, ["echo: alpha", "echo: second", "echo: third"], "each reply once, in order")
      const idles = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM cloud_session_events WHERE session_id = ${sessionId} AND type = 'session.idle'`
      assert.strictEqual(Number(idles[0]!.n), 3, "one completion per command")

      // The checkpoint the lease row names holds both files, the transcript with each command exactly once.
      const { orgId, state } = yield* leasedCheckpoint(dataDir, sessionId)
      const transcript = new TextDecoder().decode(state.files.get(ScriptedRuntime.TRANSCRIPT_PATH)!)
      assert.deepStrictEqual([...transcript.matchAll(/^## (\S+)$/gm)].map((m) => m[1]), [c1, c2, c3])
      assert.strictEqual(new TextDecoder().decode(state.files.get("workspace/notes.txt")!), "echo: alpha", "restored from the first worker's checkpoint")

      // The second worker restored the first's checkpoint, and its first save wrote one object: both files are small,
      // so they ride inlined in the manifest and no chunk object is uploaded.
      yield* eventually("restore logged", Effect.sync(() => logLines(second.output(), "checkpoint restored").length > 0 ? true : undefined), { timeoutMs: 10_000 })
      const saves = logLines(second.output(), "checkpoint saved")
      assert.isAtLeast(saves.length, 2)
      const firstSave = saves[0]
      const field = (line: any, name: string) => Number(line[name] ?? line.annotations?.[name] ?? line.details?.[name])
      assert.strictEqual(field(firstSave, "uploaded_chunks"), 0, "no chunk object")
      assert.strictEqual(field(firstSave, "inlined_chunks"), 2, "the transcript and notes.txt in the manifest")
      assert.strictEqual(field(firstSave, "uploaded_bytes"), 0)
      const objects = Fs.readdirSync(Path.join(dataDir, "objects", "data", "checkpoints", orgId, sessionId), { recursive: true })
      assert.notInclude(objects.map(String), "chunks", "no save of this session needed a chunk object")
    }).pipe(
      Effect.scoped,
      Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 4, applicationName: "drill-inspector" }))
    )), { timeout: 90_000 })
})
