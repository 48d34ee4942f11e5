import { Database, freePort } from "@cowork/postgres"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"

/**
 * Real `cowork` processes for the drills and the load harness: each role is a child process of this Node (24), with
 * only the OPEN_COWORK_* variables the drill passes (nothing leaks in from the operator's shell).
 */

const mainPath = Path.resolve(import.meta.dirname, "../main.ts")
const repoRoot = Path.resolve(import.meta.dirname, "../../../..")

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

const baseEnv = (env: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("OPEN_COWORK_")) out[key] = value
  }
  // Forwarded: where the Postgres programs are.
  if (process.env.OPEN_COWORK_PG_BIN_DIR !== undefined) out.OPEN_COWORK_PG_BIN_DIR = process.env.OPEN_COWORK_PG_BIN_DIR
  return { ...out, ...env }
}

export interface Proc {
  readonly name: string
  readonly child: ChildProcess.ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | string>
  readonly alive: () => boolean
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  readonly stop: (graceMs?: number) => Promise<number | string>
  readonly kill: (signal?: NodeJS.Signals) => Promise<number | string>
}

/** Children still running when this process exits are killed (one exit hook for all of them). */
const live = new Set<ChildProcess.ChildProcess>()
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

/**
 * Starts `cowork <args>`. `nodeArgs`: flags for the child's node (before the script). `inheritEnv`: the whole
 * environment of this process is passed on, OPEN_COWORK_* included (the benchmarks: an operator's settings reach the
 * measured process); otherwise only `env`'s OPEN_COWORK_* variables (the drills).
 */
export const spawnCowork = (
  name: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { readonly nodeArgs?: ReadonlyArray<string>; readonly inheritEnv?: boolean } = {}
): Proc => {
  const child = ChildProcess.spawn(process.execPath, [...(options.nodeArgs ?? []), mainPath, ...args], {
    cwd: repoRoot,
    env: options.inheritEnv === true ? { ...process.env, ...env } : baseEnv(env),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const append = (chunk: Buffer) => {
    output += chunk.toString("utf8")
    if (output.length > 400_000) output = output.slice(-200_000)
  }
  child.stdout!.on("data", append)
  child.stderr!.on("data", append)
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")))
  const alive = () => child.exitCode === null && child.signalCode === null
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (alive()) child.kill(signal)
    return exited
  }
  const stop = async (graceMs = 60_000) => {
    if (!alive()) return exited
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  live.add(child)
  void exited.then(() => live.delete(child))
  return { name, child, output: () => output, exited, alive, stop, kill }
}

/** Runs `cowork <args>` to completion, whatever its exit code. */
export const runCowork = (args: ReadonlyArray<string>, env: Record<string, string>, timeoutMs = 300_000) =>
  new Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resolve) => {
    ChildProcess.execFile(process.execPath, [mainPath, ...args], { cwd: repoRoot, env: baseEnv(env), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
  })

/** Polls `check` until it returns a value; throws naming `what` after `timeoutMs`. */
export const waitFor = async <A>(what: string, check: () => Promise<A | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? "" : ` (last error: ${String(lastError)})`}`)
    }
    await sleep(intervalMs)
  }
}

/** Waits for `GET <base>/readyz` 200; the process's output tail is in the error. */
export const waitReady = async (proc: Proc, baseUrl: string, timeoutMs = 60_000) => {
  try {
    await waitFor(`${proc.name} /readyz`, async () => {
      if (!proc.alive()) throw new Error(`${proc.name} exited`)
      // Each probe has its own deadline: one left unanswered must not use up the whole wait.
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined)
      return response?.status === 200 ? true : undefined
    }, timeoutMs)
  } catch (error) {
    throw new Error(`${String(error)}\n--- ${proc.name} output (tail) ---\n${proc.output().slice(-6_000)}`)
  }
}

export { freePort }

/** One SQL query against `url` (a fresh pool per call: drills query rarely). */
export const query = <A extends object>(url: string, text: string, params: ReadonlyArray<unknown> = []) =>
  Effect.runPromise(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.unsafe<A>(text, params as Array<any>)
  }).pipe(Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 1, applicationName: "cowork-drill" })), Effect.scoped))

export const ensureDatabase = (serverUrl: string, database: string) => Effect.runPromise(Database.ensureDatabase(serverUrl, database))

/** JSON over HTTP with a bearer token; `body` undefined sends no body. */
export const call = async (baseUrl: string, token: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await response.text()
  let json: any
  try {
    json = text === "" ? undefined : JSON.parse(text)
  } catch {
    json = text
  }
  return { status: response.status, body: json, headers: response.headers }
}
