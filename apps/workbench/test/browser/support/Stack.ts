import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { freshDatabaseUrl } from "../../../../../test/support/TestDatabase.ts"

const repoRoot = Path.resolve(import.meta.dirname, "../../../../..")
const cli = Path.join(repoRoot, "apps/cli/src/main.ts")

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

interface Role {
  readonly child: ChildProcess.ChildProcess
  readonly exited: Promise<void>
  output: string
}

const spawnRole = (role: "web" | "worker", env: Record<string, string>): Role => {
  const child = ChildProcess.spawn(process.execPath, [cli, role], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const handle: Role = { child, exited: new Promise((resolve) => child.once("exit", () => resolve())), output: "" }
  const append = (chunk: Buffer) => {
    handle.output += chunk.toString("utf8")
    if (handle.output.length > 400_000) handle.output = handle.output.slice(-200_000)
  }
  child.stdout!.on("data", append)
  child.stderr!.on("data", append)
  return handle
}

const waitFor = async <A>(what: string, deadlineMs: number, probe: () => Promise<A | undefined>, role?: Role): Promise<A> => {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline || (role !== undefined && role.child.exitCode !== null)) {
      throw new Error(`${what} did not happen within ${deadlineMs} ms\n${role?.output.slice(-4000) ?? ""}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * A split stack for the browser tests: `cowork web` and `cowork worker` as separate processes over a fresh database
 * of the run's Postgres cluster (so the web process can be killed and restarted while the worker goes on), the
 * scripted runtime, and the owner token the web process printed on its first start.
 */
export class Stack {
  private web: Role | undefined
  private readonly workers: Array<Role & { id?: string }> = []

  readonly port: number
  readonly baseUrl: string
  readonly dataDir: string
  ownerToken = ""
  private readonly env: Record<string, string>

  private constructor(port: number, env: Record<string, string>, dataDir: string) {
    this.port = port
    this.baseUrl = `http://127.0.0.1:${port}`
    this.env = env
    this.dataDir = dataDir
  }

  static async start(): Promise<Stack> {
    const databaseUrl = await Effect.runPromise(freshDatabaseUrl)
    const port = await freePort()
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-browser-"))
    const env = {
      OPEN_COWORK_DATABASE_URL: databaseUrl,
      OPEN_COWORK_DATA_DIR: dataDir,
      OPEN_COWORK_CLOUD_PORT: String(port),
      // A short drain so a stopped web process lets go of its port at once.
      OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS: "1000",
      // A killed worker's lease expires within seconds, so another worker retries its turn while the test waits.
      OPEN_COWORK_CLOUD_LEASE_TTL_MS: "6000"
    }
    const stack = new Stack(port, env, dataDir)
    await stack.startWeb()
    return stack
  }

  /** Starts the web process (again) on the same port and waits until it is ready. */
  async startWeb(): Promise<void> {
    const web = spawnRole("web", this.env)
    this.web = web
    if (this.ownerToken === "") {
      this.ownerToken = await waitFor("the owner token banner", 60_000, async () => /occ_[A-Za-z0-9]+_[A-Za-z0-9_-]+/.exec(web.output)?.[0], web)
    }
    await waitFor("web readiness", 60_000, async () => ((await fetch(`${this.baseUrl}/readyz`)).status === 200 ? true : undefined), web)
  }

  /** Kills the web process with SIGKILL (no drain: open streams just break) and waits until it is gone. */
  async killWeb(): Promise<void> {
    const web = this.web
    if (web === undefined) return
    web.child.kill("SIGKILL")
    await web.exited
    this.web = undefined
  }

  /** Kills the named worker process with SIGKILL (no drain, no lease release: the lease has to expire). */
  async killWorker(workerId: string): Promise<void> {
    const worker = this.workers.find((w) => w.id === workerId && w.child.exitCode === null)
    if (worker === undefined) throw new Error(`no running worker ${workerId}`)
    worker.child.kill("SIGKILL")
    await worker.exited
  }

  /** Starts a worker process with the given id and waits until the web role sees it fresh. */
  async startWorker(workerId: string): Promise<void> {
    const worker = spawnRole("worker", {
      ...this.env,
      OPEN_COWORK_CLOUD_WORKER_ID: workerId,
      OPEN_COWORK_CLOUD_LIVENESS_PORT: String(await freePort())
    })
    this.workers.push(Object.assign(worker, { id: workerId }))
    await waitFor(`worker ${workerId} heartbeat`, 60_000, async () => {
      const response = await fetch(`${this.baseUrl}/api/workers/heartbeats`, { headers: { authorization: `Bearer ${this.ownerToken}` } })
      const body = await response.json() as { heartbeats: ReadonlyArray<{ workerId: string; fresh: boolean }> }
      return body.heartbeats.some((beat) => beat.workerId === workerId && beat.fresh) ? true : undefined
    }, worker)
  }

  /** The owner token's API, for test setup and checks outside the browser. */
  async api(method: string, path: string, body?: unknown): Promise<any> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.ownerToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`)
    return text === "" ? undefined : JSON.parse(text)
  }

  /** One SQL statement on the stack's database (for drills the API cannot stage, e.g. pruning a session's log). */
  async sql(text: string, values: ReadonlyArray<unknown> = []): Promise<void> {
    const { default: pg } = await import("pg")
    const client = new pg.Client({ connectionString: this.env.OPEN_COWORK_DATABASE_URL })
    await client.connect()
    try {
      await client.query(text, [...values])
    } finally {
      await client.end()
    }
  }

  /** Polls the session's projected view until `ready` holds (or fails after 30 s). */
  async viewWhen(sessionId: string, ready: (view: any) => boolean): Promise<any> {
    return waitFor(`session ${sessionId} view`, 30_000, async () => {
      const view = await this.api("GET", `/api/sessions/${sessionId}/view`)
      return ready(view) ? view : undefined
    })
  }

  logs(): string {
    return [this.web?.output ?? "", ...this.workers.map((w) => w.output)].join("\n---\n")
  }

  async close(): Promise<void> {
    const all = [...this.workers, ...(this.web === undefined ? [] : [this.web])]
    for (const role of all) role.child.kill("SIGTERM")
    await Promise.race([Promise.all(all.map((role) => role.exited)), new Promise((resolve) => setTimeout(resolve, 10_000))])
    for (const role of all) if (role.child.exitCode === null) role.child.kill("SIGKILL")
    Fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}
