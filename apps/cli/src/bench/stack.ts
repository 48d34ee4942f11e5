/** Shared by the benchmarks: `cowork up` as a child process, and small helpers for load generation. */
import { Database, freePort, startEmbeddedPostgres } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import { Effect, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Client, makeFetch } from "@cowork/client"
import { type Proc, spawnCowork as spawnProc } from "../ops/Procs.ts"

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
  readonly proc: Proc
}

export interface StackOptions {
  readonly databaseUrl: string
  readonly dataDir: string
  readonly workerConcurrency: number
  readonly extraEnv?: Record<string, string> | undefined
  /** For a later start on the same database: the owner token is printed only on the first. */
  readonly knownToken?: string | undefined
}

/**
 * A fresh embedded Postgres cluster for one bench run, in a temporary directory `cowork-bench-<name>-…` (removed when
 * the scope closes; the cluster runs as its own user, so the directory is world-readable) with an empty database
 * `bench` at `url`. `postmaster` is its pid, for the CPU of the cluster's processes from /proc.
 */
export const benchCluster = (name: string) =>
  Effect.gen(function*() {
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `cowork-bench-${name}-`))
    Fs.chmodSync(dataDir, 0o755)
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
    const pgDir = Path.join(dataDir, "postgres")
    const cluster = yield* startEmbeddedPostgres(pgDir)
    yield* Database.ensureDatabase(cluster.url("postgres"), "bench")
    const postmaster = Number(Fs.readFileSync(Path.join(pgDir, "postmaster.pid"), "utf8").split("\n")[0])
    return { dataDir, url: cluster.url("bench"), postmaster }
  })

/**
 * A whole-number setting from the environment (a `BENCH_*` knob; see docs/benchmarks.md, "Bench settings"), at least
 * `min`; unset or empty, `fallback`. Anything else stops the bench naming the variable: a typo must not run (and
 * record) a benchmark of something else, as `Number("2k")` = NaN silently did.
 */
export const envInt = (name: string, fallback: number, min = 1) => {
  const raw = process.env[name]
  return raw === undefined || raw.trim() === "" ? fallback : parseWholeNumber(name, raw.trim(), min)
}

/** A comma-separated list of whole numbers, each at least `min` (e.g. `100,300`); unset or empty, `fallback`. */
export const envInts = (name: string, fallback: ReadonlyArray<number>, min = 1) => {
  const raw = process.env[name]
  return raw === undefined || raw.trim() === "" ? fallback : raw.split(",").map((item) => parseWholeNumber(name, item.trim(), min))
}

const parseWholeNumber = (name: string, text: string, min: number) => {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`${name}: expected a whole number ≥ ${min}, got ${JSON.stringify(text)}`)
  }
  return value
}

/** The machine line of a benchmark entry (load average at the time of the call). */
export const machine = () => {
  const cpus = Os.cpus()
  return {
    os: `${Os.type()} ${Os.release()} ${Os.arch()}`,
    cpus: `${cpus.length} × ${cpus[0]?.model ?? "unknown"}`,
    memory: `${round(Os.totalmem() / 1024 ** 3)} GiB`,
    loadAverage: Os.loadavg().map((n) => round(n, 2)).join(" / "),
    node: process.version
  }
}

/** The measured commit: BENCH_COMMIT when set (a tree built elsewhere), else this checkout's short HEAD, else "unknown". */
export const gitHead = () => {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT
  try {
    return ChildProcess.execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

/** BENCH_CHILD_NODE_ARGS: node flags for a measured child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (not allowed in NODE_OPTIONS). */
export const childNodeArgs = (): ReadonlyArray<string> => (process.env.BENCH_CHILD_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "")

export type { Proc }

/** A measured `cowork <command>` (`ops/Procs.ts`): this process's whole environment passed on, `nodeArgs` to its node. */
export const spawnCowork = (command: string, env: Record<string, string>, nodeArgs: ReadonlyArray<string> = []): Proc =>
  spawnProc(command, [command], env, { nodeArgs, inheritEnv: true })

/**
 * Waits until `baseUrl`'s `/readyz` answers and the owner token is known (read from the first-start banner, or
 * passed in for a later start); returns the token. Gives up after 90 s or when the process exits.
 */
export const waitReady = async (baseUrl: string, proc: Proc, knownToken?: string): Promise<string> => {
  const health = await Effect.runPromise(makeFetch({ baseUrl }))
  const deadline = Date.now() + 90_000
  for (;;) {
    const token = knownToken ?? /occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+/.exec(proc.output())?.[0]
    const ready = await Effect.runPromise(health.readyz().pipe(Effect.as(true), Effect.orElseSucceed(() => false)))
    if (ready && token !== undefined) return token
    if (Date.now() > deadline || !proc.alive()) {
      await proc.kill()
      throw new Error(`${proc.name} did not become ready\n${proc.output().slice(-8000)}`)
    }
    await sleep(100)
  }
}

/** Starts `cowork up` (BENCH_CHILD_NODE_ARGS apply); the owner token is read from its first-start banner, or passed in for a later start. */
export const startStack = async (options: StackOptions): Promise<Stack> => {
  const port = await freePort()
  const proc = spawnCowork("up", {
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
    // Checkpoints and artifacts go under the benchmark's temp dir, not the repository's .cowork/.
    OPEN_COWORK_DATA_DIR: options.dataDir,
    ...options.extraEnv
  }, childNodeArgs())
  const baseUrl = `http://127.0.0.1:${port}`
  const token = await waitReady(baseUrl, proc, options.knownToken)
  return { baseUrl, token, api: await Effect.runPromise(makeFetch({ baseUrl, token })), child: proc.child, exited: proc.exited, proc }
}

/** SIGTERM, then SIGKILL if still running after 60 s; the exit code or signal. */
export const stopStack = (stack: Stack) => Effect.promise(() => stack.proc.stop(60_000))

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
