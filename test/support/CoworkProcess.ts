import { Effect, Schedule } from "effect"
import * as ChildProcess from "node:child_process"
import { freePort as findFreePort } from "@cowork/postgres"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

const repoRoot = Path.resolve(import.meta.dirname, "../..")
const mainPath = Path.join(repoRoot, "apps/cli/src/main.ts")

export const freePort = Effect.promise(findFreePort)

/** A `cowork` child process (Node 24: the test runner's own `process.execPath`) with its output captured. */
export interface CoworkProcess {
  readonly name: string
  readonly child: ChildProcess.ChildProcess
  readonly output: () => string
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
}

/**
 * One data dir per test file under the OS temp dir, shared by the processes it starts (so web and workers see the
 * same object store and key file): nothing a test spawns writes into the repo's `.cowork/`. A test passing its own
 * OPEN_COWORK_DATA_DIR overrides it.
 */
let defaultDataDir: string | undefined
const testDataDir = (): string => (defaultDataDir ??= Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-process-")))

const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("OPEN_COWORK_")) env[key] = value
  }
  env.OPEN_COWORK_DATA_DIR = testDataDir()
  return env
}

/** Runs `cowork <args>` to completion; fails with its output when it exits non-zero. */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.callback<{ readonly stdout: string; readonly stderr: string }, Error>((resume) => {
    const child = ChildProcess.execFile(process.execPath, [mainPath, ...args], {
      cwd: repoRoot,
      env: { ...baseEnv(), ...env },
      timeout: 60_000
    }, (error, stdout, stderr) => {
      resume(error === null
        ? Effect.succeed({ stdout, stderr })
        : Effect.fail(new Error(`cowork ${args.join(" ")} failed: ${String(error)}\n${stdout}\n${stderr}`)))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Runs `cowork <args>` to completion, whatever its exit code. */
export const runCliExit = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.callback<{ readonly code: number | string; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = ChildProcess.execFile(process.execPath, [mainPath, ...args], {
      cwd: repoRoot,
      env: { ...baseEnv(), ...env },
      timeout: 60_000
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : (error as { code?: number | string }).code ?? (error as { signal?: string }).signal ?? "?"
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Starts a long-running `cowork <args>`; SIGKILLed when the scope closes if still alive. */
export const spawn = (name: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync((): CoworkProcess => {
      const child = ChildProcess.spawn(process.execPath, [mainPath, ...args], {
        cwd: repoRoot,
        env: { ...baseEnv(), ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      const exited = new Promise<number | string>((resolve) =>
        child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
      )
      return { name, child, output: () => output, exited }
    }),
    (proc) =>
      Effect.promise(async () => {
        if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGKILL")
        await proc.exited
      })
  )

/** Polls `check` every `intervalMs` until it returns a value, or fails after `timeoutMs` with `what`. */
export const eventually = <A, E, R>(
  what: string,
  check: Effect.Effect<A | undefined, E, R>,
  options: { readonly timeoutMs: number; readonly intervalMs?: number }
) =>
  check.pipe(
    Effect.flatMap((value) => value === undefined ? Effect.fail("not yet" as const) : Effect.succeed(value)),
    Effect.retry({
      while: (error) => error === "not yet",
      schedule: Schedule.spaced(options.intervalMs ?? 100)
    }),
    Effect.timeoutOrElse({
      duration: options.timeoutMs,
      orElse: () => Effect.die(new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}`))
    })
  )

/**
 * Waits until `GET /readyz` answers 200, or dies with the last answer (which check failed) and the process output.
 * Each probe request has its own deadline, so one hung request cannot use up the whole wait unseen.
 */
export const waitReady = (proc: CoworkProcess, baseUrl: string, timeoutMs = 30_000) => {
  let last = "no answer yet"
  return eventually(
    `${proc.name} to be ready`,
    Effect.promise(() =>
      fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
        async (r) => {
          if (r.status === 200) return true
          last = `${r.status} ${await r.text().catch(() => "")}`
          return undefined
        },
        (error: unknown) => {
          last = `request failed: ${String(error)}`
          return undefined
        }
      )
    ),
    { timeoutMs, intervalMs: 100 }
  ).pipe(
    Effect.catchDefect((defect) =>
      Effect.die(new Error(`${String(defect)}\nlast /readyz: ${last}\n--- ${proc.name} output ---\n${proc.output()}`))
    )
  )
}

/** Runs `cowork <args>` to completion and returns its exit code and output, whatever the code. */
export const runCliResult = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = ChildProcess.execFile(process.execPath, [mainPath, ...args], {
      cwd: repoRoot,
      env: { ...baseEnv(), ...env },
      timeout: 60_000
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** `true` once nothing listens on `127.0.0.1:port` (a connection is refused); for `eventually` after a SIGTERM. */
export const refusesConnections = (port: number) =>
  Effect.promise(() =>
    new Promise<true | undefined>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(undefined)
      })
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED" ? true : undefined))
    })
  )
