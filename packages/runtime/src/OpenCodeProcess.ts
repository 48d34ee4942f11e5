import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { access, mkdir, readFile, readlink, realpath, rm, symlink, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import * as path from "node:path"
import type { Event as OpenCodeEvent } from "@opencode-ai/sdk/v2"

/**
 * One `opencode serve` child for one session, with the Node-level plumbing: its directories and config seeds, the
 * spawn with an environment built from nothing (the agent's shell inherits it, so no key and none of the worker's
 * variables may ride along), the wait for the listening line and a healthy `/global/health`, one SSE
 * subscription to `/event` for the life of the process, and the few HTTP calls the runtime makes.
 */

export type { OpenCodeEvent }

/** Where a session's opencode state lives: `<root>/sessions/<sessionId>/…`, the same path on every worker. */
export interface SessionPaths {
  readonly base: string
  /** The agent's workspace (a git work dir); opencode stores its absolute path in rows, so it must not move. */
  readonly work: string
  readonly home: string
  readonly data: string
  readonly config: string
  readonly state: string
  readonly cache: string
  readonly tmp: string
  /** `OPENCODE_CONFIG_DIR` */
  readonly configDir: string
  /** Our own record for the session (the opencode session id), part of the exported state. */
  readonly record: string
  /** The pid of the opencode serving this directory, so a successor can stop one a dead worker left behind. */
  readonly pidFile: string
}

export const sessionPaths = (root: string, sessionId: string): SessionPaths => {
  const base = path.join(root, "sessions", sessionId)
  const xdg = path.join(base, "xdg")
  return {
    base,
    work: path.join(base, "work"),
    home: path.join(xdg, "home"),
    data: path.join(xdg, "data"),
    config: path.join(xdg, "config"),
    state: path.join(xdg, "state"),
    cache: path.join(xdg, "cache"),
    tmp: path.join(xdg, "tmp"),
    configDir: path.join(base, "opencode-config"),
    record: path.join(base, "cowork-session.json"),
    pidFile: path.join(base, "opencode.pid")
  }
}

export interface ProviderConfig {
  /** The provider id opencode knows the model under (default `cowork`). */
  readonly id: string
  readonly model: string
  /** An OpenAI-compatible base URL (`…/v1`): the worker's model proxy, or a fake model server in tests. */
  readonly baseURL: string
  /** What opencode sends as its key: a placeholder, the proxy authenticates the session by its URL. */
  readonly apiKey: string
  /** Problems the endpoint reports out of band (a key that could not be revealed): redacted messages. */
  readonly problems?: ((listener: (message: string) => void) => () => void) | undefined
}

export interface SpawnOptions {
  readonly binary: string
  readonly paths: SessionPaths
  readonly provider: ProviderConfig
  /** Opencode permission rules (e.g. `{ edit: "ask" }`); opencode's defaults when absent. */
  readonly permission?: Readonly<Record<string, unknown>> | undefined
  readonly startTimeoutMs: number
  /** Called with each line opencode writes to stdout/stderr (for debug logs; never contains our key). */
  readonly onOutput?: ((line: string) => void) | undefined
}

const OFFLINE_ENV: Readonly<Record<string, string>> = {
  OPENCODE_DISABLE_AUTOUPDATE: "1",
  OPENCODE_DISABLE_MODELS_FETCH: "1",
  OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
  OPENCODE_DISABLE_SHARE: "1",
  OPENCODE_DISABLE_CLAUDE_CODE: "1",
  OPENCODE_DISABLE_EXTERNAL_SKILLS: "1",
  OPENCODE_DISABLE_EMBEDDED_WEB_UI: "1"
}

/** The installed `@opencode-ai/plugin` (a dependency of ours), linked into every config dir. */
const pluginPackage = (() => {
  let resolved: { readonly dir: string; readonly version: string } | undefined
  return () => {
    if (resolved !== undefined) return resolved
    const require = createRequire(import.meta.url)
    // ESM-only (no `require` export): look it up in the node_modules dirs resolution would search.
    const dir = (require.resolve.paths("@opencode-ai/plugin") ?? [])
      .map((modules) => path.join(modules, "@opencode-ai", "plugin"))
      .find((candidate) => existsSync(path.join(candidate, "package.json")))
    if (dir === undefined) throw new Error("@opencode-ai/plugin is not installed")
    const version = (require(path.join(dir, "package.json")) as { version: string }).version
    resolved = { dir, version }
    return resolved
  }
})()

/** The opencode binary from its platform package (`opencode-linux-x64` on this platform; the `opencode-ai` wrapper is not a dependency: its other platforms' packages are not all on the registry, which breaks `npm ci`). */
export const defaultBinary = (): string => {
  const require = createRequire(import.meta.url)
  const platform = `opencode-${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`
  return path.join(path.dirname(require.resolve(`${platform}/package.json`)), "bin", "opencode")
}

/**
 * At every boot opencode runs `npm install @opencode-ai/plugin@<version>` in each config dir unless it finds the
 * package there: a `package.json` + `package-lock.json` naming it and the package installed (linked to ours),
 * so no registry traffic happens.
 */
const seedConfigDir = async (dir: string): Promise<void> => {
  const plugin = pluginPackage()
  await mkdir(path.join(dir, "node_modules", "@opencode-ai"), { recursive: true })
  const dependencies = { "@opencode-ai/plugin": plugin.version }
  await writeFile(path.join(dir, "package.json"), JSON.stringify({ dependencies }, null, 2))
  await writeFile(
    path.join(dir, "package-lock.json"),
    JSON.stringify({
      name: "opencode-config",
      lockfileVersion: 3,
      requires: true,
      packages: { "": { dependencies }, "node_modules/@opencode-ai/plugin": { version: plugin.version } }
    }, null, 2)
  )
  const link = path.join(dir, "node_modules", "@opencode-ai", "plugin")
  await rm(link, { recursive: true, force: true })
  await symlink(plugin.dir, link, "dir")
}

const opencodeConfig = (options: Pick<SpawnOptions, "provider" | "permission">) => {
  const { provider } = options
  const model = `${provider.id}/${provider.model}`
  return {
    $schema: "https://opencode.ai/config.json",
    autoupdate: false,
    share: "disabled",
    lsp: false,
    formatter: false,
    model,
    small_model: model,
    enabled_providers: [provider.id],
    provider: {
      [provider.id]: {
        npm: "@ai-sdk/openai-compatible",
        name: provider.id,
        options: { baseURL: provider.baseURL, apiKey: provider.apiKey },
        models: { [provider.model]: { name: provider.model, tool_call: true } }
      }
    },
    ...(options.permission === undefined ? {} : { permission: options.permission })
  }
}

/** Creates the session's directories (a git work dir, XDG roots) and writes the config and seeds. */
/**
 * Stops an opencode a dead predecessor left running on this session's directory (a worker killed with SIGKILL
 * cannot stop its children): the pid file names it, and it is only signalled when it still runs in this session's
 * workspace (so a recycled pid is never hit). Its whole process group goes, tools included.
 */
export const reapStale = async (paths: SessionPaths): Promise<void> => {
  const text = await readFile(paths.pidFile, "utf8").catch(() => undefined)
  if (text === undefined) return
  const pid = Number(text.trim())
  if (Number.isInteger(pid) && pid > 1) {
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined)
    const work = await realpath(paths.work).catch(() => paths.work)
    if (cwd === work) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, "SIGKILL")
        } catch {
          // gone, or not a group leader
        }
      }
      const deadline = Date.now() + 5_000
      while (Date.now() < deadline && (await readlink(`/proc/${pid}/cwd`).then(() => true, () => false))) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  await rm(paths.pidFile, { force: true })
}

const prepare = async (options: Pick<SpawnOptions, "paths" | "provider" | "permission">): Promise<void> => {
  const { paths } = options
  for (const dir of [paths.work, paths.home, paths.data, paths.config, paths.state, paths.cache, paths.tmp, paths.configDir]) {
    await mkdir(dir, { recursive: true })
  }
  const configHome = path.join(paths.config, "opencode")
  await mkdir(configHome, { recursive: true })
  await writeFile(path.join(configHome, "opencode.json"), JSON.stringify(opencodeConfig(options), null, 2))
  await seedConfigDir(configHome)
  await seedConfigDir(paths.configDir)
}

const gitInit = (work: string, env: NodeJS.ProcessEnv): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn("git", ["init", "-q"], { cwd: work, env, stdio: "ignore" })
    child.once("error", reject)
    child.once("exit", (code) => code === 0 ? resolve() : reject(new Error(`git init exited with ${code}`)))
  })

const parseSse = async function*(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buffer = ""
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let boundary = buffer.indexOf("\n\n")
    while (boundary !== -1) {
      const frame = buffer.slice(0, boundary)
      buffer = buffer.slice(boundary + 2)
      const data = frame.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart())
      if (data.length > 0) yield data.join("\n")
      boundary = buffer.indexOf("\n\n")
    }
  }
}

class OpenCodeHttpError extends Error {
  readonly status: number
  constructor(status: number, route: string, body: string) {
    super(`opencode ${route} answered ${status}${body === "" ? "" : `: ${body.slice(0, 200)}`}`)
    this.status = status
  }
}

/** A running `opencode serve`: its URL, an event fan-out, and the HTTP calls the runtime needs. */
export class OpenCodeProcess {
  private readonly listeners = new Set<(event: OpenCodeEvent) => void>()
  private readonly exitListeners = new Set<(reason: string) => void>()
  private readonly events = new AbortController()
  private exited: string | undefined

  readonly child: ChildProcess
  readonly url: string
  private readonly authorization: string
  readonly directory: string

  private constructor(child: ChildProcess, url: string, authorization: string, directory: string) {
    this.child = child
    this.url = url
    this.authorization = authorization
    this.directory = directory
    child.once("exit", (code, signal) => this.markExited(`opencode exited (${signal ?? code})`))
  }

  private markExited(reason: string) {
    if (this.exited !== undefined) return
    this.exited = reason
    this.events.abort()
    for (const listener of this.exitListeners) listener(reason)
  }

  /** The HTTP Basic credentials opencode wants (tests probe its API with them). */
  get authorizationHeader(): string {
    return this.authorization
  }

  get exitReason(): string | undefined {
    return this.exited
  }

  /** Spawns opencode in the session's work dir and resolves once it listens and reports healthy. */
  static async start(options: SpawnOptions): Promise<OpenCodeProcess> {
    const { paths } = options
    await reapStale(paths)
    await prepare(options)
    const password = randomBytes(24).toString("base64url")
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      LANG: "C.UTF-8",
      HOME: paths.home,
      XDG_DATA_HOME: paths.data,
      XDG_CONFIG_HOME: paths.config,
      XDG_STATE_HOME: paths.state,
      XDG_CACHE_HOME: paths.cache,
      TMPDIR: paths.tmp,
      OPENCODE_CONFIG_DIR: paths.configDir,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "cowork",
      GIT_AUTHOR_EMAIL: "cowork@localhost",
      GIT_COMMITTER_NAME: "cowork",
      GIT_COMMITTER_EMAIL: "cowork@localhost",
      ...OFFLINE_ENV
    }
    if (!(await exists(path.join(paths.work, ".git")))) await gitInit(paths.work, env)
    const deadline = Date.now() + options.startTimeoutMs
    // `--port 0` does not mean "any port" to opencode (it tries 4096 first): pick a free one ourselves, and try again
    // with another when opencode exits before listening (the port was taken in between).
    for (let attempt = 1;; attempt++) {
      try {
        return await OpenCodeProcess.spawnOn(options, env, password, await freeLoopbackPort(), deadline)
      } catch (error) {
        if (!(error instanceof ExitedBeforeListening) || attempt >= 3 || Date.now() >= deadline) throw error
      }
    }
  }

  private static async spawnOn(
    options: SpawnOptions,
    env: NodeJS.ProcessEnv,
    password: string,
    port: number,
    deadline: number
  ): Promise<OpenCodeProcess> {
    const { paths } = options
    const child = spawn(options.binary, ["serve", "--port", String(port), "--hostname", "127.0.0.1"], {
      cwd: paths.work,
      env: { ...env, OPENCODE_SERVER_PASSWORD: password },
      stdio: ["pipe", "pipe", "pipe"],
      // Its own process group, so stopping it also stops the tools it runs.
      detached: true
    })
    if (child.pid !== undefined) await writeFile(paths.pidFile, String(child.pid))
    const authorization = `Basic ${Buffer.from(`opencode:${password}`).toString("base64")}`
    try {
      const url = await listening(child, options, deadline)
      const proc = new OpenCodeProcess(child, url, authorization, paths.work)
      await proc.awaitHealthy(deadline)
      await proc.subscribe(deadline)
      return proc
    } catch (error) {
      await stopChild(child)
      throw error
    }
  }

  private async awaitHealthy(deadline: number): Promise<void> {
    let last = "no answer"
    while (Date.now() < deadline) {
      if (this.exited !== undefined) throw new Error(this.exited)
      try {
        const response = await fetch(`${this.url}/global/health`, {
          headers: { authorization: this.authorization },
          signal: AbortSignal.timeout(Math.max(1, Math.min(2_000, deadline - Date.now())))
        })
        if (response.ok) {
          const body = await response.json() as { healthy?: boolean }
          if (body.healthy === true) return
        }
        last = `status ${response.status}`
      } catch (error) {
        last = error instanceof Error ? error.message : String(error)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`opencode did not become healthy in time (${last})`)
  }

  /** Opens the one `/event` subscription; resolves once `server.connected` arrived. */
  private async subscribe(deadline: number): Promise<void> {
    const response = await this.connectEvents(deadline)
    if (!response.ok || response.body === null) throw new OpenCodeHttpError(response.status, "GET /event", "")
    const frames = parseSse(response.body)
    const connected = await Promise.race([
      frames.next(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), Math.max(1, deadline - Date.now())))
    ])
    if (connected === undefined || connected.done === true) throw new Error("opencode event stream did not connect in time")
    void (async () => {
      try {
        for await (const frame of frames) {
          let event: OpenCodeEvent
          try {
            event = JSON.parse(frame) as OpenCodeEvent
          } catch {
            continue
          }
          for (const listener of this.listeners) listener(event)
        }
        this.markExited("opencode event stream ended")
      } catch (error) {
        this.markExited(`opencode event stream failed: ${error instanceof Error ? error.message : String(error)}`)
      }
    })()
  }

  /**
   * Connects to `/event`. On a loaded machine a just-healthy opencode has been seen to drop the first connection
   * ("fetch failed"): a network-level failure is tried again until the start deadline, like the health poll.
   */
  private async connectEvents(deadline: number): Promise<Response> {
    for (;;) {
      if (this.exited !== undefined) throw new Error(this.exited)
      try {
        return await fetch(`${this.url}/event?directory=${encodeURIComponent(this.directory)}`, {
          headers: { authorization: this.authorization, accept: "text/event-stream" },
          signal: this.events.signal
        })
      } catch (error) {
        if (this.events.signal.aborted || Date.now() >= deadline) throw error
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Registers a listener for every event; returns its removal. */
  onEvent(listener: (event: OpenCodeEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Registers a listener for the process (or its event stream) ending; returns its removal. */
  onExit(listener: (reason: string) => void): () => void {
    this.exitListeners.add(listener)
    return () => this.exitListeners.delete(listener)
  }

  async request<A>(method: string, route: string, body?: unknown): Promise<A> {
    const separator = route.includes("?") ? "&" : "?"
    const response = await fetch(`${this.url}${route}${separator}directory=${encodeURIComponent(this.directory)}`, {
      method,
      headers: {
        authorization: this.authorization,
        ...(body === undefined ? {} : { "content-type": "application/json" })
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000)
    })
    const text = await response.text()
    if (!response.ok) throw new OpenCodeHttpError(response.status, `${method} ${route.split("?")[0]}`, text)
    return (text === "" ? undefined : JSON.parse(text)) as A
  }

  /** Stops opencode and its process group: SIGTERM, then SIGKILL after a grace period. */
  async stop(): Promise<void> {
    this.events.abort()
    await stopChild(this.child)
    this.markExited("opencode stopped")
  }
}

const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false)

class ExitedBeforeListening extends Error {}

const freeLoopbackPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const listening = (child: ChildProcess, options: SpawnOptions, deadline: number): Promise<string> =>
  new Promise((resolve, reject) => {
    let output = ""
    let settled = false
    const finish = (error: Error | undefined, url?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error !== undefined) reject(error)
      else resolve(url!)
    }
    const timer = setTimeout(
      () => finish(new Error(`opencode did not listen within ${options.startTimeoutMs} ms`)),
      Math.max(1, deadline - Date.now())
    )
    const onLine = (line: string) => {
      options.onOutput?.(line)
      const match = /opencode server listening on (https?:\/\/\S+)/.exec(line)
      if (match !== null) finish(undefined, match[1]!.replace(/\/$/, ""))
    }
    const reader = (stream: NodeJS.ReadableStream | null) => {
      let pending = ""
      stream?.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8")
        output = (output + chunk.toString("utf8")).slice(-2_000)
        let newline = pending.indexOf("\n")
        while (newline !== -1) {
          onLine(pending.slice(0, newline))
          pending = pending.slice(newline + 1)
          newline = pending.indexOf("\n")
        }
      })
    }
    reader(child.stdout)
    reader(child.stderr)
    child.once("error", (error) => finish(error))
    child.once("exit", (code, signal) =>
      finish(new ExitedBeforeListening(`opencode exited before listening (${signal ?? code}): ${output.trim().slice(-500)}`)))
  })

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve()
    const pid = child.pid
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal)
      } catch {
        try {
          child.kill(signal)
        } catch {
          // already gone
        }
      }
    }
    const timer = setTimeout(() => signalGroup("SIGKILL"), 3_000)
    child.once("exit", () => {
      clearTimeout(timer)
      // Anything the agent left running in the group goes too.
      signalGroup("SIGKILL")
      resolve()
    })
    signalGroup("SIGTERM")
  })
