import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { Logging, minimumLogLevel } from "@cowork/observability"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"

const capture = () => {
  const lines: Array<string> = []
  return { lines, layer: Logging.layerTo("worker", (line) => lines.push(line)) }
}

describe("Logging", () => {
  it.effect("writes one JSON object per line with the request and lease annotations at top level", () => {
    const { lines, layer } = capture()
    return Effect.gen(function*() {
      yield* Effect.logInfo("command acked").pipe(
        Effect.annotateLogs({ request_id: "req_42", session_id: "ses_1", epoch: 3, command_id: "cmd_9", duration_ms: 12 })
      )
      yield* Effect.logWarning("lease renewal slow", { attempt: 2 }).pipe(Effect.withSpan("LeaseStore.renew"))
      assert.strictEqual(lines.length, 2)
      for (const line of lines) assert.notInclude(line, "\n")
      const [acked, slow] = lines.map((line) => JSON.parse(line))
      assert.deepInclude(acked, {
        level: "info",
        message: "command acked",
        role: "worker",
        request_id: "req_42",
        session_id: "ses_1",
        epoch: 3,
        command_id: "cmd_9",
        duration_ms: 12
      })
      assert.isFalse(Number.isNaN(Date.parse(acked.timestamp)))
      assert.strictEqual(slow.level, "warn")
      assert.deepStrictEqual(slow.details, { attempt: 2 })
      assert.match(slow.trace_id, /^[0-9a-f]+$/)
    }).pipe(Effect.provide(layer))
  })

  it.effect("redacts secrets in messages, annotations, details and causes", () => {
    const { lines, layer } = capture()
    const canaries = {
      token: "occ_AbCd1234_zyXw9876543210QwErTyUiOp",
      key: "sk-ant-api03-CANARY1234567890abcdefXYZ",
      password: "Pa55w0rd-CANARY",
      signature: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
      email: "canary.person@example.org"
    }
    return Effect.gen(function*() {
      yield* Effect.logError(`auth failed for Bearer ${canaries.token}`, { headers: { authorization: canaries.key } }).pipe(
        Effect.annotateLogs({
          database: `postgres://cowork:${canaries.password}@db:5432/cowork`,
          upload: `https://b.s3.amazonaws.com/x?X-Amz-Signature=${canaries.signature}`,
          owner: canaries.email
        })
      )
      yield* Effect.logError("runtime crashed").pipe(
        Effect.andThen(Effect.fail(new Error(`provider said: invalid key ${canaries.key}`))),
        Effect.catchCause((cause) => Effect.logError("command failed", cause))
      )
      yield* Effect.fail(`cwd /home/canaryuser/project`).pipe(Effect.catchCause((cause) => Effect.logError(cause)))
      const text = lines.join("\n")
      assert.strictEqual(lines.length, 4)
      for (const canary of [...Object.values(canaries), "canaryuser"]) assert.notInclude(text, canary)
      const first = JSON.parse(lines[0]!)
      assert.strictEqual(first.database, "postgres://[REDACTED]@db:5432/cowork")
    }).pipe(Effect.provide(layer))
  })
})

describe("OPEN_COWORK_CLOUD_LOG_LEVEL", () => {
  const linesAt = (value: string | undefined) => {
    const { lines, layer } = capture()
    return Effect.gen(function*() {
      yield* Effect.logDebug("debug line")
      yield* Effect.logInfo("info line")
      yield* Effect.logWarning("warn line")
      return lines.map((line) => JSON.parse(line) as { level: string; message: string; value?: string })
    }).pipe(Effect.provide(Logging.levelFrom(value).pipe(Layer.provideMerge(layer))))
  }

  it.effect("names the least severe level logged, in any case; unset is info", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* linesAt(undefined)).map((line) => line.message), ["info line", "warn line"])
      assert.deepStrictEqual((yield* linesAt("DEBUG")).map((line) => line.message), ["debug line", "info line", "warn line"])
      assert.deepStrictEqual((yield* linesAt("warn")).map((line) => line.message), ["warn line"])
      assert.deepStrictEqual((yield* linesAt(" error ")).map((line) => line.message), [])
    }))

  it.effect("an unknown value logs at info and says so once, naming the value", () =>
    Effect.gen(function*() {
      const lines = yield* linesAt("loud")
      assert.deepStrictEqual(lines.map((line) => line.message), [
        "OPEN_COWORK_CLOUD_LOG_LEVEL is not a log level; logging at info",
        "info line",
        "warn line"
      ])
      assert.strictEqual(lines[0]!.value, "loud")
      assert.deepStrictEqual(minimumLogLevel("verbose"), { level: "Info", refused: "verbose" })
    }))
})

/** `Logging.layer` in a real process (test/fixtures/logAndStop.ts): what survives a SIGKILL, an exit, and batching. */
describe("Logging.layer in a process", () => {
  const fixture = Path.join(import.meta.dirname, "fixtures", "logAndStop.ts")
  const run = (how: string, onStderr: (text: string, child: ChildProcess.ChildProcess) => void = () => {}) =>
    new Promise<{ stdout: string; stderr: string; code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const child = ChildProcess.spawn(process.execPath, [fixture, how], { stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk) => { stdout += chunk })
      child.stderr.on("data", (chunk) => {
        stderr += chunk
        onStderr(stderr, child)
      })
      child.once("error", reject)
      child.once("close", (code, signal) => resolve({ stdout, stderr, code, signal }))
    })
  const messages = (stdout: string) => stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line).message)

  it("an error line is on stdout when the process is SIGKILLed right after logging it, with the info line before it", async () => {
    const result = await run("hang", (stderr, child) => {
      if (stderr.includes("logged\n")) child.kill("SIGKILL")
    })
    assert.strictEqual(result.signal, "SIGKILL", result.stderr)
    assert.deepStrictEqual(messages(result.stdout), ["before the error", "the error line"])
  }, 30_000)

  it("a pending info line is written when the process exits", async () => {
    const result = await run("exit")
    assert.strictEqual(result.code, 3, result.stderr)
    assert.deepStrictEqual(messages(result.stdout), ["the last words"])
  }, 30_000)

  it("info lines are still written in batches, not one write each", async () => {
    const result = await run("batch")
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(messages(result.stdout).length, 200)
    const writes = Number(/writes (\d+)/.exec(result.stderr)?.[1])
    assert.isAtLeast(writes, 1)
    assert.isAtMost(writes, 5, "200 lines logged back to back go out in a few writes")
  }, 30_000)
})
