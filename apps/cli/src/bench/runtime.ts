/**
 * `npm run bench:runtime`: the real OpenCode runtime behind the worker, against the fake OpenAI-compatible model
 * server on loopback. `cowork up` (OPEN_COWORK_CLOUD_RUNTIME=opencode) on an embedded Postgres started here, the
 * org's key stored through the BYOK API, then prompts one at a time over BENCH_RUNTIME_SESSIONS sessions (3),
 * BENCH_RUNTIME_PROMPTS each (6). Per prompt, with one clock (this process runs the fake model and reads SSE):
 *
 * - in:  prompt POST → the first request opencode sends the model (worker claim, runtime, opencode's own work);
 *        the first prompt of a session also spawns its opencode (spawn + first prompt), the others reuse it (warm);
 * - out: the fake model's last byte of the turn → `session.idle` on SSE (opencode finishing, the worker's appends,
 *        the checkpoint save before the ack, fan-out).
 *
 * Prints the figures and appends them to docs/benchmarks.md.
 */
import { openSse } from "@cowork/client"
import { freePort } from "@cowork/postgres"
import { FakeModelServer } from "@cowork/runtime"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { benchCluster, envInt, percentile, round, sleep } from "./stack.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")
const SESSIONS = envInt("BENCH_RUNTIME_SESSIONS", 3)
const PROMPTS = envInt("BENCH_RUNTIME_PROMPTS", 6)


interface Sample {
  readonly cold: boolean
  readonly inMs: number
  readonly outMs: number
  readonly totalMs: number
}

const main = Effect.gen(function*() {
  const { dataDir, url } = yield* benchCluster("runtime")
  const fake = yield* Effect.acquireRelease(Effect.promise(() => FakeModelServer.start()), (s) => Effect.promise(() => s.close()))
  const port = yield* Effect.promise(freePort)
  const child = ChildProcess.spawn(process.execPath, [Path.join(repoRoot, "apps/cli/src/main.ts"), "up"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      OPEN_COWORK_DATABASE_URL: url,
      OPEN_COWORK_DATA_DIR: dataDir,
      OPEN_COWORK_CLOUD_PORT: String(port),
      OPEN_COWORK_CLOUD_RUNTIME: "opencode",
      OPEN_COWORK_CLOUD_OPENCODE_MODEL: "fake-model",
      OPEN_COWORK_CLOUD_BYOK_ALLOW_HTTP: "true",
      OPEN_COWORK_CLOUD_BYOK_ALLOWED_HOSTS: "127.0.0.1"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const exited = new Promise((resolve) => child.once("exit", resolve))
  yield* Effect.addFinalizer(() => Effect.promise(async () => {
    child.kill("SIGTERM")
    await exited
  }))
  let stdout = ""
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
  child.stderr!.resume()
  const baseUrl = `http://127.0.0.1:${port}`
  const token = yield* Effect.promise(async () => {
    const deadline = Date.now() + 90_000
    for (;;) {
      const found = /occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+/.exec(stdout)?.[0]
      const ready = await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false)
      if (found !== undefined && ready) return found
      if (Date.now() > deadline) throw new Error(`cowork up did not become ready\n${stdout}`)
      await sleep(200)
    }
  })
  const api = (method: string, route: string, body?: unknown) =>
    fetch(`${baseUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(async (r) => ({ status: r.status, body: await r.json() as any }))

  const samples = yield* Effect.promise(async () => {
    const stored = await api("POST", "/api/byok/openai", { apiKey: "sk-bench-0000000000", baseUrl: fake.url })
    if (stored.status !== 200) throw new Error(`storing the key failed: ${JSON.stringify(stored.body)}`)
    const results: Array<Sample> = []
    for (let s = 0; s < SESSIONS; s++) {
      const sessionId: string = (await api("POST", "/api/sessions", { title: `bench-runtime-${s}` })).body.session.id
      const controller = new AbortController()
      let idleAt: ((at: number) => void) | undefined
      await openSse(`${baseUrl}/api/sessions/${sessionId}/events`, { authorization: `Bearer ${token}` }, controller.signal, (frame) => {
        if (frame.event === "session.idle") idleAt?.(Date.now())
      })
      for (let p = 0; p < PROMPTS; p++) {
        const before = fake.completions().length
        const idle = new Promise<number>((resolve) => (idleAt = resolve))
        const sentAt = Date.now()
        await api("POST", `/api/sessions/${sessionId}/prompt`, { text: `prompt ${p} of session ${s} [[chunks:8]]` })
        const idledAt = await idle
        const turn = fake.completions().slice(before)
        const first = turn[0]
        const lastByte = Math.max(...turn.map((r) => r.finishedAt ?? r.receivedAt))
        if (first === undefined) throw new Error("the turn made no model request")
        results.push({ cold: p === 0, inMs: first.receivedAt - sentAt, outMs: idledAt - lastByte, totalMs: idledAt - sentAt })
      }
      controller.abort()
    }
    return results
  })

  const warm = samples.filter((sample) => !sample.cold)
  const cold = samples.filter((sample) => sample.cold)
  const stats = (values: ReadonlyArray<number>) => `p50 ${round(percentile(values, 50), 0)} ms, p99 ${round(percentile(values, 99), 0)} ms`
  const cpus = Os.cpus()
  const markdown = [
    `## ${new Date().toISOString()} — bench:runtime (real opencode ${"1.18.33"}, fake model on loopback)`,
    "",
    `Machine: ${cpus.length} × ${cpus[0]?.model ?? "unknown"}, ${round(Os.totalmem() / 1024 ** 3, 0)} GiB, load ${Os.loadavg().map((n) => round(n, 2)).join(" / ")}, ${process.version}.`,
    `Stack: \`cowork up\` with OPEN_COWORK_CLOUD_RUNTIME=opencode, checkpoints on; ${SESSIONS} sessions × ${PROMPTS} prompts, one at a time.`,
    "",
    "| figure | samples | value |",
    "|---|---|---|",
    `| warm prompt: POST → first model request (worker + opencode overhead in) | ${warm.length} | ${stats(warm.map((s) => s.inMs))} |`,
    `| warm prompt: model's last byte → session.idle on SSE (overhead out, incl. checkpoint save) | ${warm.length} | ${stats(warm.map((s) => s.outMs))} |`,
    `| warm prompt: POST → session.idle | ${warm.length} | ${stats(warm.map((s) => s.totalMs))} |`,
    `| cold (spawn) prompt: POST → first model request (claim, spawn to healthy, session create) | ${cold.length} | ${stats(cold.map((s) => s.inMs))} |`,
    `| cold prompt: model's last byte → session.idle | ${cold.length} | ${stats(cold.map((s) => s.outMs))} |`,
    ""
  ].join("\n")
  console.log(JSON.stringify(samples))
  console.log(markdown)
  Fs.appendFileSync(Path.join(repoRoot, "docs/benchmarks.md"), `${markdown}\n`)
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
