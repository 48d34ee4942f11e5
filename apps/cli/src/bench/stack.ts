/** Shared by the benchmarks: `cowork up` as a child process, and small helpers for load generation. */
import { freePort } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import { Effect, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { type Client, makeFetch } from "@cowork/client"

const repoRoot = Path.resolve(import.meta.dirname, "../../../..")

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export const round = (n: number, digits = 1) => Number.isFinite(n) ? Number(n.toFixed(digits)) : n

/** Runs `task` over `items` with at most `limit` in flight. */
export const pool = async <A, B>(items: ReadonlyArray<A>, limit: number, task: (item: A, index: number) => Promise<B>) => {
  const results: Array<B> = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index]!, index)
    }
  }))
  return results
}

export interface Stack {
  readonly baseUrl: string
  readonly token: string
  readonly api: Client
  readonly child: ChildProcess.ChildProcess
  readonly exited: Promise<number | string>
}

export interface StackOptions {
  readonly databaseUrl: string
  readonly dataDir: string
  readonly workerConcurrency: number
  readonly extraEnv?: Record<string, string> | undefined
  /** For a later start on the same database: the owner token is printed only on the first. */
  readonly knownToken?: string | undefined
}

/** Starts `cowork up`; the owner token is read from its first-start banner, or passed in for a later start. */
export const startStack = async (options: StackOptions): Promise<Stack> => {
  const port = await freePort()
  // BENCH_CHILD_NODE_ARGS: node flags for the child only, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (not allowed in NODE_OPTIONS).
  const nodeArgs = (process.env.BENCH_CHILD_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "")
  const child = ChildProcess.spawn(process.execPath, [...nodeArgs, Path.join(repoRoot, "apps/cli/src/main.ts"), "up"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      OPEN_COWORK_DATABASE_URL: options.databaseUrl,
      OPEN_COWORK_CLOUD_PORT: String(port),
      OPEN_COWORK_CLOUD_WORKER_ID: "bench-worker",
      OPEN_COWORK_CLOUD_WORKER_CONCURRENCY: String(options.workerConcurrency),
      OPEN_COWORK_CLOUD_SSE_MAX_STREAMS_PER_ORG: "5000",
      // One token drives the whole load: the per-caller request limits would measure themselves.
      OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "100000000",
      OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "100000000",
      OPEN_COWORK_CLOUD_QUOTA_PROMPTS_PER_HOUR: "100000000",
      OPEN_COWORK_CLOUD_QUOTA_QUEUED_COMMANDS: "100000000",
      OPEN_COWORK_CLOUD_QUOTA_CONCURRENT_SESSIONS: "100000000",
      OPEN_COWORK_DATA_DIR: options.dataDir,
      ...options.extraEnv
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")))
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    if (stdout.length < 100_000) stdout += chunk.toString("utf8")
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000)
  })
  const baseUrl = `http://127.0.0.1:${port}`
  const health = await Effect.runPromise(makeFetch({ baseUrl }))
  const deadline = Date.now() + 90_000
  for (;;) {
    const token = options.knownToken ?? /occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+/.exec(stdout)?.[0]
    const ready = await Effect.runPromise(health.readyz().pipe(Effect.as(true), Effect.orElseSucceed(() => false)))
    if (ready && token !== undefined) {
      return { baseUrl, token, api: await Effect.runPromise(makeFetch({ baseUrl, token })), child, exited }
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL")
      throw new Error(`cowork up did not become ready\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`)
    }
    await sleep(100)
  }
}

export const stopStack = (stack: Stack) =>
  Effect.promise(async () => {
    stack.child.kill("SIGTERM")
    const code = await Promise.race([stack.exited, sleep(60_000).then(() => "timeout")])
    if (code === "timeout") stack.child.kill("SIGKILL")
    return code
  })

export const prompt = (stack: Stack, sessionId: string, text: string) =>
  Effect.runPromise(stack.api.sessions.prompt({ params: { id: sessionId }, payload: { text } }))

export const createSessions = (stack: Stack, count: number, title: string) =>
  pool(Array.from({ length: count }, (_, i) => i), 32, async (i) =>
    (await Effect.runPromise(stack.api.sessions.create({ payload: { title: `${title}-${i}` } }))).session.id)

/**
 * The raw fenced ceiling of both pipeline benches: one worker fiber that claims a session, runs its backlog through
 * `next` + one fenced append per command (status, final message, idle, ack) and releases it when idle; returns how
 * many commands it completed once no session is left to claim.
 */
export const ceilingWorker = (workerId: string) =>
  Effect.gen(function*() {
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const log = yield* EventLog
    let completed = 0
    for (;;) {
      const claimed = yield* leases.claim(workerId, 1, 15_000, 3)
      if (claimed.length === 0) return completed
      const lease = claimed[0]!
      for (;;) {
        const next = yield* queue.next(lease)
        if (Option.isNone(next)) {
          if (yield* leases.releaseIfIdle(lease)) break
          continue
        }
        const command = next.value
        const owner = { commandId: command.id, attempt: command.attempt }
        yield* log.append(lease, [
          { type: "session.status", payload: { status: "running", commandId: command.id }, ...owner },
          { type: "assistant.message", payload: { messageId: `msg_${command.id}`, text: "echo: ceiling", final: true }, ...owner },
          { type: "session.idle", payload: { commandId: command.id, outcome: "acked" }, ...owner }
        ], { commandId: command.id, outcome: "acked" })
        completed++
      }
    }
  })
