// Checks the deployment artefacts against the code: the Dockerfile's rules (no Docker engine runs here, and no
// hadolint package exists), the container entry point and health check (run for real), the Compose file (dclint,
// pinned, plus our own cross-references) and the Kubernetes manifests (rendered with `kubectl kustomize`, which
// .ci/run installs, then checked object by object).
import { assert, describe, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Yaml from "yaml"

const root = Path.resolve(import.meta.dirname, "../..")
const read = (relative: string) => Fs.readFileSync(Path.join(root, relative), "utf8")
const exists = (relative: string) => Fs.existsSync(Path.join(root, relative))

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
type Obj = { readonly [key: string]: Json }
const isObj = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value)
const obj = (value: unknown, what: string): Obj => {
  if (!isObj(value)) throw new Error(`${what} is not a mapping`)
  return value
}
const arr = (value: unknown): ReadonlyArray<Json> => (Array.isArray(value) ? value : [])
const str = (value: unknown): string => (typeof value === "string" ? value : String(value))

// ---- the set of OPEN_COWORK_* variables the code reads (sources only, tests excluded) ----
const sourceFiles = (dir: string): Array<string> => {
  const out: Array<string> = []
  const walk = (current: string) => {
    for (const entry of Fs.readdirSync(current, { withFileTypes: true })) {
      const full = Path.join(current, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules" && entry.name !== "test") walk(full)
      } else if (entry.name.endsWith(".ts")) out.push(full)
    }
  }
  walk(dir)
  return out
}
const codeVariables: ReadonlySet<string> = (() => {
  const names = new Set<string>()
  for (const top of ["apps", "packages"]) {
    for (const workspace of Fs.readdirSync(Path.join(root, top))) {
      const src = Path.join(root, top, workspace, "src")
      if (!Fs.existsSync(src)) continue
      for (const file of sourceFiles(src)) {
        for (const match of Fs.readFileSync(file, "utf8").matchAll(/OPEN_COWORK_[A-Z0-9_]*[A-Z0-9]/g)) names.add(match[0])
      }
    }
  }
  return names
})()
/** An OPEN_COWORK_* name a deployment file sets: read by the code, or `<read>_FILE` (the image's entry point). */
const unknownVariables = (names: Iterable<string>) =>
  [...names].filter((name) => name.startsWith("OPEN_COWORK_"))
    .filter((name) => !codeVariables.has(name) && !(name.endsWith("_FILE") && codeVariables.has(name.slice(0, -5))))
/** A setting holding a secret (…_CREDENTIALS_DIR is the directory of per-org credential files: a path, not one). */
const SECRET_NAME = /PASSWORD|SECRET_ACCESS_KEY|ACCESS_KEY_ID|DATABASE_URL|CREDENTIAL(?!S_DIR$)|CLIENT_SECRET|TOKEN$/
const SHUTDOWN_GRACE_DEFAULT_MS = 30_000

// ---- Dockerfile ----
interface Instruction { readonly stage: number; readonly keyword: string; readonly args: string }
const dockerInstructions = (text: string): Array<Instruction> => {
  const logical: Array<string> = []
  let pending = ""
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line.startsWith("#") || (line === "" && pending === "")) continue
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " "
      continue
    }
    logical.push(pending + line)
    pending = ""
  }
  let stage = -1
  return logical.filter((line) => line !== "").map((line) => {
    const [keyword, ...rest] = line.split(/\s+/)
    const upper = keyword!.toUpperCase()
    if (upper === "FROM") stage += 1
    return { stage, keyword: upper, args: rest.join(" ") }
  })
}

describe("Dockerfile", () => {
  const instructions = dockerInstructions(read("Dockerfile"))
  const finalStage = Math.max(...instructions.map((i) => i.stage))
  const final = instructions.filter((i) => i.stage === finalStage)
  const all = (keyword: string) => instructions.filter((i) => i.keyword === keyword)
  const lastOf = (keyword: string) => final.filter((i) => i.keyword === keyword).at(-1)

  it("is multi-stage on Node 24, every base pinned to a tag that is not latest", () => {
    const froms = all("FROM")
    assert.isAtLeast(froms.length, 2)
    const nodeVersion = all("ARG").find((i) => i.args.startsWith("NODE_VERSION="))?.args.split("=")[1]
    assert.strictEqual(nodeVersion, "24")
    for (const from of froms) {
      const image = from.args.split(/\s+/)[0]!
      if (/^[a-z]+$/.test(image)) continue // a previous stage
      assert.match(image, /^node:\$\{NODE_VERSION\}-[a-z]+-slim$/, `FROM ${from.args}`)
      assert.match(from.args, /\sAS\s+[a-z]+$/i, `every stage is named: ${from.args}`)
    }
    const copies = final.filter((i) => i.keyword === "COPY" && i.args.includes("--from="))
    assert.isAtLeast(copies.length, 1, "the runtime stage copies from a build stage")
  })

  it("runs as a numeric non-root user in the final stage, with the container defaults the app needs", () => {
    const user = lastOf("USER")
    assert.isDefined(user)
    const [uid] = user!.args.split(":")
    assert.match(uid!, /^[0-9]+$/, "numeric, so Kubernetes runAsNonRoot can check it")
    assert.notStrictEqual(uid, "0")
    const env = final.filter((i) => i.keyword === "ENV").map((i) => i.args).join(" ")
    assert.include(env, "OPEN_COWORK_CLOUD_HOST=0.0.0.0")
    const names = [...env.matchAll(/(OPEN_COWORK_[A-Z0-9_]+)=/g)].map((m) => m[1]!)
    assert.deepStrictEqual(unknownVariables(names), [])
    assert.deepStrictEqual(names.filter((name) => SECRET_NAME.test(name)), [], "no secret in ENV")
    assert.isUndefined(instructions.find((i) => i.keyword === "ADD"), "COPY, not ADD")
  })

  it("installs apt packages without recommends, in the RUN that updates, and cleans the lists", () => {
    for (const run of all("RUN").filter((i) => i.args.includes("apt-get install"))) {
      assert.include(run.args, "apt-get update")
      assert.include(run.args, "--no-install-recommends")
      assert.include(run.args, "-y")
      assert.include(run.args, "rm -rf /var/lib/apt/lists/*")
    }
  })

  it("starts the CLI through an init in exec form, stops on SIGTERM, and health-checks the role's probe", () => {
    const entrypoint = JSON.parse(lastOf("ENTRYPOINT")!.args) as Array<string>
    assert.strictEqual(entrypoint[0], "/usr/bin/tini")
    assert.strictEqual(entrypoint.at(-1), "/app/deploy/docker/entrypoint.sh")
    assert.strictEqual(lastOf("STOPSIGNAL")?.args, "SIGTERM")
    const health = lastOf("HEALTHCHECK")!.args
    const command = JSON.parse(health.slice(health.indexOf("CMD") + 3).trim()) as Array<string>
    assert.deepStrictEqual(command.slice(0, 2), ["node", "/app/deploy/docker/healthcheck.mjs"])
    assert.isTrue(exists("deploy/docker/healthcheck.mjs"))
    const script = read("deploy/docker/entrypoint.sh")
    assert.include(script, "exec node /app/apps/cli/src/main.ts \"$@\"")
    assert.isTrue(exists("apps/cli/src/main.ts"))
    assert.isTrue((Fs.statSync(Path.join(root, "deploy/docker/entrypoint.sh")).mode & 0o111) !== 0, "executable")
  })

  it("the roles it documents are CLI commands", () => {
    const commands = Fs.readdirSync(Path.join(root, "apps/cli/src/commands"))
      .map((file) => read(`apps/cli/src/commands/${file}`)).join("\n")
    for (const role of ["up", "web", "worker", "scheduler", "migrate"]) {
      assert.include(commands, `Command.make("${role}"`, role)
    }
    assert.include(read("apps/cli/src/commands/Serve.ts"), "OPEN_COWORK_CLOUD_ROLE")
  })

  it(".dockerignore keeps local state and VCS out and keeps what the image needs in", () => {
    const ignored = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
    for (const pattern of ["**/node_modules", ".git", ".cowork"]) assert.include(ignored, pattern)
    for (const needed of ["apps", "packages", "package.json", "package-lock.json", ".npmrc", "deploy", "deploy/docker"]) {
      assert.notInclude(ignored, needed)
    }
  })
})

// ---- the entry point and the health check, run ----
const withFakeNode = (env: Record<string, string>) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-entry-"))
  Fs.writeFileSync(Path.join(dir, "node"), "#!/bin/sh\necho \"ARGS $*\"\nenv | grep '^OPEN_COWORK_' | sort\n", { mode: 0o755 })
  const result = ChildProcess.spawnSync("/bin/sh", [Path.join(root, "deploy/docker/entrypoint.sh"), "worker"], {
    env: { PATH: `${dir}:/usr/bin:/bin`, ...env },
    encoding: "utf8"
  })
  return { dir, status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe("entry point", () => {
  it("turns OPEN_COWORK_*_FILE into the variable and passes the command to the CLI", () => {
    const secret = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-secret-")), "database_url")
    Fs.writeFileSync(secret, "postgres://u:p@db/x\n")
    const run = withFakeNode({ OPEN_COWORK_DATABASE_URL_FILE: secret, OPEN_COWORK_CLOUD_PORT: "8787" })
    assert.strictEqual(run.status, 0, run.stderr)
    assert.include(run.stdout, "ARGS /app/apps/cli/src/main.ts worker")
    assert.include(run.stdout, "OPEN_COWORK_DATABASE_URL=postgres://u:p@db/x\n")
    assert.notInclude(run.stdout, "_FILE=")
    assert.include(run.stdout, "OPEN_COWORK_CLOUD_PORT=8787")
  })

  it("refuses a variable set both ways, and an unreadable file, naming it", () => {
    const both = withFakeNode({ OPEN_COWORK_DATABASE_URL_FILE: "/etc/hostname", OPEN_COWORK_DATABASE_URL: "x" })
    assert.strictEqual(both.status, 1)
    assert.include(both.stderr, "OPEN_COWORK_DATABASE_URL")
    assert.notInclude(both.stdout, "ARGS")
    const missing = withFakeNode({ OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY_FILE: "/nonexistent/secret" })
    assert.strictEqual(missing.status, 1)
    assert.include(missing.stderr, "OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY_FILE")
  })
})

const serve = (status: number) =>
  new Promise<Http.Server>((resolve) => {
    const server = Http.createServer((request, response) => {
      response.writeHead(request.url === "/livez" || request.url === "/readyz" ? status : 404).end()
    })
    server.listen(0, "127.0.0.1", () => resolve(server))
  })
const portOf = (server: Http.Server) => String((server.address() as AddressInfo).port)
const freePort = async () => {
  const server = await serve(200)
  const port = portOf(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}
const healthcheck = (env: Record<string, string>, path: string) =>
  new Promise<number | null>((resolve) => {
    const child = ChildProcess.spawn(process.execPath, [Path.join(root, "deploy/docker/healthcheck.mjs"), path], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: "ignore"
    })
    child.on("exit", (code) => resolve(code))
  })

describe("health check", () => {
  it("passes on the web port, falls back to the liveness port, and fails on a 503 or nothing listening", async () => {
    const up = await serve(200)
    const draining = await serve(503)
    const nothing = await freePort()
    try {
      assert.strictEqual(await healthcheck({ OPEN_COWORK_CLOUD_PORT: portOf(up) }, "/livez"), 0)
      assert.strictEqual(
        await healthcheck({ OPEN_COWORK_CLOUD_PORT: nothing, OPEN_COWORK_CLOUD_LIVENESS_PORT: portOf(up) }, "/readyz"),
        0
      )
      assert.strictEqual(await healthcheck({ OPEN_COWORK_CLOUD_PORT: portOf(draining) }, "/readyz"), 1)
      assert.strictEqual(
        await healthcheck({ OPEN_COWORK_CLOUD_PORT: nothing, OPEN_COWORK_CLOUD_LIVENESS_PORT: nothing }, "/livez"),
        1
      )
    } finally {
      up.close()
      draining.close()
    }
  })
})

// ---- Compose ----
const composePath = "deploy/compose/compose.yaml"
const compose = obj(Yaml.parse(read(composePath), { merge: true }), "compose")
const services = obj(compose.services, "services")
const topSecrets = obj(compose.secrets, "secrets")
const topVolumes = obj(compose.volumes ?? {}, "volumes")
const cowork = (name: string) => str(obj(services[name], name).image).startsWith("cowork-cloud:")
const envOf = (service: Obj): Record<string, string> => {
  const env = service.environment
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const [key, ...value] = str(entry).split("=")
      return [key!, value.join("=")]
    }))
  }
  return Object.fromEntries(Object.entries(isObj(env) ? env : {}).map(([k, v]) => [k, str(v)]))
}
const durationMs = (value: string) => {
  const match = /^([0-9]+)(ms|s|m)$/.exec(value)
  if (!match) throw new Error(`duration ${value}`)
  return Number(match[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[match[2] as "ms" | "s" | "m"]
}

describe("compose", () => {
  it("has Postgres, MinIO, web x2, worker x2, a scheduler, and gateway x2 in its own profile", () => {
    for (const name of ["postgres", "minio", "web", "worker", "scheduler", "migrate", "gateway"]) assert.property(services, name)
    assert.strictEqual(obj(obj(services.web, "web").deploy, "deploy").replicas, 2)
    assert.strictEqual(obj(obj(services.worker, "worker").deploy, "deploy").replicas, 2)
    const gateway = obj(services.gateway, "gateway")
    assert.strictEqual(obj(gateway.deploy, "deploy").replicas, 2)
    assert.deepStrictEqual(gateway.profiles, ["gateway"], "it starts once a gateway token was issued")
    assert.deepStrictEqual(arr(obj(gateway.healthcheck, "gateway.healthcheck").test).map(str), ["CMD", "node", "/app/deploy/docker/healthcheck.mjs", "/health"])
    assert.strictEqual(envOf(gateway).OPEN_COWORK_GATEWAY_CLOUD_URL, "http://web:8787")
    assert.isAbove(durationMs(str(gateway.stop_grace_period)), Number(envOf(gateway).OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS))
    for (const role of ["web", "worker", "scheduler", "migrate", "gateway"]) {
      assert.deepStrictEqual(obj(services[role], role).command, [role])
    }
     // The webhook allow-list on both roles that check it (the same value); per-org binding credentials mounted read-only.
    assert.strictEqual(envOf(gateway).OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS, envOf(obj(services.web, "web")).OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS)
    assert.isDefined(envOf(gateway).OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS)
    const credentialsDir = envOf(gateway).OPEN_COWORK_GATEWAY_CREDENTIALS_DIR!
    assert.isTrue(Path.isAbsolute(credentialsDir), "an absolute credentials directory")
    assert.include(arr(gateway.volumes).map(str), `./credentials:${credentialsDir}:ro`)
    assert.include(read("deploy/compose/.gitignore").split("\n"), "credentials/")
  })

  it("every depends_on, secret and volume a service names exists, and conditions fit the target", () => {
    const problems: Array<string> = []
    for (const [name, value] of Object.entries(services)) {
      const service = obj(value, name)
      const depends = isObj(service.depends_on) ? service.depends_on : {}
      for (const [target, spec] of Object.entries(depends)) {
        const other = services[target]
        if (!isObj(other)) {
          problems.push(`${name} depends on missing ${target}`)
          continue
        }
        const condition = str(obj(spec, `${name}.depends_on.${target}`).condition)
        const check = other.healthcheck
        if (condition === "service_healthy" && (!isObj(check) || check.disable === true) && !cowork(target)) {
          problems.push(`${name} waits for ${target} to be healthy but it has no health check`)
        }
        if (condition === "service_completed_successfully" && other.restart !== "no") {
          problems.push(`${name} waits for ${target} to complete but it restarts`)
        }
      }
      for (const secret of arr(service.secrets)) {
        const secretName = isObj(secret) ? str(secret.source) : str(secret)
        if (!(secretName in topSecrets)) problems.push(`${name} uses missing secret ${secretName}`)
      }
      for (const volume of arr(service.volumes)) {
        const source = isObj(volume) ? str(volume.source) : str(volume).split(":")[0]!
        if (!source.startsWith(".") && !source.startsWith("/") && !(source in topVolumes)) {
          problems.push(`${name} uses missing volume ${source}`)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("secrets are git-ignored files that init-secrets.sh writes, and services read them as files", () => {
    assert.include(read("deploy/compose/.gitignore").split("\n"), "secrets/")
    const init = read("deploy/compose/init-secrets.sh")
    for (const [name, value] of Object.entries(topSecrets)) {
      assert.strictEqual(obj(value, name).file, `./secrets/${name}`)
      assert.include(init, `secrets/${name}`)
    }
    const problems: Array<string> = []
    for (const [name, value] of Object.entries(services)) {
      const service = obj(value, name)
      const mounted = new Set(arr(service.secrets).map((s) => (isObj(s) ? str(s.source) : str(s))))
      for (const [key, val] of Object.entries(envOf(service))) {
        if (SECRET_NAME.test(key.replace(/_FILE$/, "")) && !key.endsWith("_FILE")) {
          problems.push(`${name}: ${key} is a plain secret`)
        }
        if (key.startsWith("OPEN_COWORK_") && key.endsWith("_FILE") || key === "OPEN_COWORK_CLOUD_SECRET_KEY_REF") {
          const secret = /^(?:file:)?\/run\/secrets\/([a-z0-9_]+)$/.exec(val)?.[1]
          if (secret === undefined || !mounted.has(secret)) problems.push(`${name}: ${key}=${val} is not a mounted secret`)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("init-secrets.sh writes every secret once, in the formats the services read", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-init-secrets-"))
    Fs.copyFileSync(Path.join(root, "deploy/compose/init-secrets.sh"), Path.join(dir, "init-secrets.sh"))
    const run = () => ChildProcess.spawnSync("/bin/sh", [Path.join(dir, "init-secrets.sh")], { encoding: "utf8" })
    assert.strictEqual(run().status, 0)
    const secret = (name: string) => Fs.readFileSync(Path.join(dir, "secrets", name), "utf8")
    for (const name of Object.keys(topSecrets)) assert.isAbove(secret(name).trim().length, 8, name)
    const key = secret("cowork_secret_key").trim()
    assert.strictEqual(Buffer.from(key, "base64").byteLength, 32)
    assert.strictEqual(Buffer.from(key, "base64").toString("base64"), key)
    assert.strictEqual(
      secret("database_url").trim(),
      `postgres://cowork:${secret("postgres_password").trim()}@postgres:5432/cowork`
    )
    const before = secret("s3_secret_access_key")
    Fs.chmodSync(Path.join(dir, "secrets"), 0o700)
    assert.strictEqual(run().status, 0)
    assert.strictEqual(secret("s3_secret_access_key"), before, "existing secrets are kept")
  })

  it("every OPEN_COWORK_* variable it sets is one the code reads", () => {
    assert.isAbove(codeVariables.size, 40)
    const names = new Set(Object.values(services).flatMap((service) => Object.keys(envOf(obj(service, "service")))))
    assert.deepStrictEqual(unknownVariables(names), [])
    assert.deepStrictEqual(unknownVariables(["OPEN_COWORK_NOT_A_SETTING", "OPEN_COWORK_NOPE_FILE"]).length, 2)
  })

  it("cowork services health-check the role's probe and get the shutdown grace plus a margin to stop", () => {
    for (const name of ["web", "worker", "scheduler"]) {
      const service = obj(services[name], name)
      const test = arr(obj(service.healthcheck, `${name}.healthcheck`).test).map(str)
      assert.deepStrictEqual(test, ["CMD", "node", "/app/deploy/docker/healthcheck.mjs", "/readyz"])
      const env = envOf(service)
      const grace = Number(env.OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS ?? SHUTDOWN_GRACE_DEFAULT_MS)
      assert.isAbove(durationMs(str(service.stop_grace_period)), grace, name)
      if (name !== "web") assert.strictEqual(env.OPEN_COWORK_CLOUD_LIVENESS_PORT, "8788", name)
      assert.strictEqual(env.OPEN_COWORK_CLOUD_RUN_MIGRATIONS, "false", `${name}: the migrate service migrates`)
    }
  })

  it("passes dclint (Compose spec schema + its rules, warnings fail), which does fail a broken file", () => {
    const dclint = Path.join(root, "node_modules/.bin/dclint")
    const config = Path.join(root, "deploy/compose/.dclintrc.json")
    const run = (file: string) =>
      ChildProcess.spawnSync(dclint, ["-c", config, "--max-warnings", "0", "--color", "false", file], { encoding: "utf8" })
    const good = run(Path.join(root, composePath))
    assert.strictEqual(good.status, 0, good.stdout + good.stderr)
    const broken = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-compose-")), "compose.yaml")
    Fs.writeFileSync(broken, read(composePath).replace("condition: service_healthy", "condition: when_ready"))
    const bad = run(broken)
    assert.notStrictEqual(bad.status, 0)
    assert.include(bad.stdout, "invalid-schema")
  })
})

// ---- Kubernetes ----
const k8s = "deploy/kubernetes"
const kubectl = ChildProcess.spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0
const render = (overlay: string): Array<Obj> => {
  const result = ChildProcess.spawnSync("kubectl", ["kustomize", Path.join(root, k8s, "overlays", overlay)], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024
  })
  if (result.status !== 0) throw new Error(`kubectl kustomize ${overlay}: ${result.stderr}`)
  return Yaml.parseAllDocuments(result.stdout).map((doc) => obj(doc.toJS(), "object")).filter((o) => o.kind !== undefined)
}
const kustomizationRefs = (dir: string) => {
  const k = obj(Yaml.parse(read(`${dir}/kustomization.yaml`)), `${dir}/kustomization.yaml`)
  return {
    files: [...arr(k.resources), ...arr(k.patchesStrategicMerge)].map(str),
    bases: arr(k.bases).map(str)
  }
}

/** Validates an object against the Kubernetes OpenAPI schema of its kind (kubernetes-models); CRDs are skipped. */
const CRD_GROUPS = ["monitoring.coreos.com/"]
const schemaErrors = async (objects: ReadonlyArray<Obj>): Promise<Array<string>> => {
  const errors: Array<string> = []
  for (const object of objects) {
    const apiVersion = str(object.apiVersion)
    const kind = str(object.kind)
    if (CRD_GROUPS.some((group) => apiVersion.startsWith(group))) continue
    const module = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, new(data: Obj) => { validate(): void }>
    const Model = module[kind]
    if (Model === undefined) {
      errors.push(`${apiVersion} ${kind}: no schema`)
      continue
    }
    // kustomize folds long base64 Secret values over lines; the API server's decoder skips the newlines.
    const normalized: Obj = kind === "Secret" && isObj(object.data)
      ? { ...object, data: Object.fromEntries(Object.entries(object.data).map(([k, v]) => [k, str(v).replace(/\s+/g, "")])) }
      : object
    try {
      new Model(normalized).validate()
    } catch (error) {
      errors.push(`${kind}/${str(obj(object.metadata, "metadata").name)}: ${String((error as Error).message).slice(0, 300)}`)
    }
  }
  return errors
}

describe("kubernetes manifests", () => {
  it("the schema check fails an invalid object", async () => {
    const errors = await schemaErrors([
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" }, spec: { selector: {}, template: { spec: { containers: [{ name: "a", ports: [{ containerPort: "http" }] }] } } } },
      { apiVersion: "v1", kind: "Service", metadata: { name: "ok" }, spec: { ports: [{ port: 80 }] } }
    ])
    assert.strictEqual(errors.length, 1)
    assert.include(errors[0]!, "containerPort must be integer")
  })

  it("every file a kustomization names exists, and every base manifest is named", () => {
    const problems: Array<string> = []
    for (const dir of [`${k8s}/base`, `${k8s}/overlays/local`, `${k8s}/overlays/production`]) {
      const refs = kustomizationRefs(dir)
      for (const file of refs.files) if (!exists(Path.join(dir, file))) problems.push(`${dir}: missing ${file}`)
      for (const base of refs.bases) if (!exists(Path.join(dir, base, "kustomization.yaml"))) problems.push(`${dir}: base ${base}`)
      const named = new Set(refs.files)
      for (const file of Fs.readdirSync(Path.join(root, dir))) {
        if (file.endsWith(".yaml") && file !== "kustomization.yaml" && !named.has(file)) problems.push(`${dir}: ${file} unused`)
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  const overlays = ["local", "production"] as const
  // .ci/run installs kubectl; outside CI a machine without it skips the render (and says so).
  for (const overlay of overlays) {
    it.skipIf(!kubectl && process.env.CI === undefined)(`overlay ${overlay} renders, passes the Kubernetes schemas and follows our rules`, async () => {
      const objects = render(overlay)
      assert.deepStrictEqual(await schemaErrors(objects), [])
      const byKind = (kind: string) => objects.filter((o) => o.kind === kind)
      const named = (kind: string, name: string) =>
        byKind(kind).find((o) => obj(o.metadata, "metadata").name === name)
      const problems: Array<string> = []
      const config = obj(obj(named("ConfigMap", "cowork-config"), "cowork-config").data, "data")
      const graceMs = Number(config.OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS ?? SHUTDOWN_GRACE_DEFAULT_MS)
      const livenessPort = Number(config.OPEN_COWORK_CLOUD_LIVENESS_PORT)
      const webPort = Number(config.OPEN_COWORK_CLOUD_PORT ?? 8787)
      const setNames = new Set(Object.keys(config))
      for (const [key, value] of Object.entries(config)) {
        if (SECRET_NAME.test(key) && !key.endsWith("_FILE")) problems.push(`ConfigMap holds secret ${key}`)
        if (key.endsWith("_FILE") && !str(value).startsWith("/var/run/secrets/cowork/")) problems.push(`${key} not a mounted secret`)
      }
      const expectedPort: Record<string, number> = { web: webPort, worker: livenessPort, scheduler: livenessPort }
      const objectNames = new Set(objects.map((o) => `${str(o.kind)}/${str(obj(o.metadata, "metadata").name)}`))
      // The production Secret is created out of band (see the overlay's kustomization); local generates it.
      const external = overlay === "production" ? new Set(["Secret/cowork-secrets"]) : new Set<string>()
      const podSpecs = [...byKind("Deployment"), ...byKind("Job")].map((o) => ({
        name: str(obj(o.metadata, "metadata").name),
        spec: obj(obj(obj(o.spec, "spec").template, "template").spec, "pod spec"),
        labels: obj(obj(obj(obj(o.spec, "spec").template, "template").metadata, "template metadata").labels, "labels")
      }))
      for (const pod of podSpecs) {
        for (const volume of arr(pod.spec.volumes).map((v) => obj(v, "volume"))) {
          const secretName = isObj(volume.secret) ? str(volume.secret.secretName) : undefined
          if (secretName && !objectNames.has(`Secret/${secretName}`) && !external.has(`Secret/${secretName}`)) {
            problems.push(`${pod.name}: volume of missing Secret ${secretName}`)
          }
        }
        for (const container of arr(pod.spec.containers).map((c) => obj(c, "container"))) {
          for (const ref of arr(container.envFrom).map((e) => obj(e, "envFrom"))) {
            if (isObj(ref.configMapRef) && !objectNames.has(`ConfigMap/${str(ref.configMapRef.name)}`)) {
              problems.push(`${pod.name}: missing ConfigMap ${str(ref.configMapRef.name)}`)
            }
          }
          for (const env of arr(container.env).map((e) => obj(e, "env"))) {
            const name = str(env.name)
            setNames.add(name)
            if (SECRET_NAME.test(name) && !name.endsWith("_FILE") && env.value !== undefined) {
              problems.push(`${pod.name}: plain secret env ${name}`)
            }
            if (isObj(env.valueFrom) && isObj(env.valueFrom.secretKeyRef) && str(container.image).startsWith("cowork-cloud")) {
              problems.push(`${pod.name}: cowork reads ${name} from a secret env; mount it and use ${name}_FILE`)
            }
          }
        }
      }
      for (const name of unknownVariables(setNames)) problems.push(`${name} is read by no code`)

      for (const role of ["web", "worker", "scheduler"]) {
        const deployment = named("Deployment", `cowork-${role}`)
        if (!deployment) {
          problems.push(`no Deployment cowork-${role}`)
          continue
        }
        const spec = obj(deployment.spec, "spec")
        const pod = obj(obj(spec.template, "template").spec, "pod")
        const security = obj(pod.securityContext, "securityContext")
        if (security.runAsNonRoot !== true || security.runAsUser !== 10001) problems.push(`${role}: not non-root 10001`)
        if (Number(pod.terminationGracePeriodSeconds) * 1000 < graceMs + 5_000) {
          problems.push(`${role}: terminationGracePeriodSeconds ${str(pod.terminationGracePeriodSeconds)} < grace ${graceMs} ms + preStop`)
        }
        const container = obj(arr(pod.containers)[0], "container")
        assert.deepStrictEqual(container.args, [role])
        const ports = new Map(arr(container.ports).map((p) => [str(obj(p, "port").name), Number(obj(p, "port").containerPort)]))
        for (const [probe, path] of [["readinessProbe", "/readyz"], ["livenessProbe", "/livez"]] as const) {
          const get = isObj(container[probe]) ? (container[probe] as Obj).httpGet : undefined
          if (!isObj(get)) {
            problems.push(`${role}: no ${probe}`)
            continue
          }
          const port = typeof get.port === "number" ? get.port : ports.get(str(get.port))
          if (get.path !== path || port !== expectedPort[role]) {
            problems.push(`${role}: ${probe} ${str(get.path)} on ${str(port)}, want ${path} on ${expectedPort[role]}`)
          }
        }
        if (role === "worker") {
          const rolling = obj(obj(spec.strategy, "strategy").rollingUpdate, "rollingUpdate")
          if (rolling.maxUnavailable !== 0 || rolling.maxSurge !== 1) problems.push("worker: rolling update not 0/1")
        }
        const labels = obj(obj(obj(spec.template, "template").metadata, "metadata").labels, "labels")
        const selects = (selector: Json | undefined) =>
          isObj(selector) && isObj(selector.matchLabels) &&
          Object.entries(selector.matchLabels).every(([k, v]) => labels[k] === v)
        if (!byKind("PodDisruptionBudget").some((pdb) => selects(obj(pdb.spec, "spec").selector))) {
          problems.push(`${role}: no PodDisruptionBudget`)
        }
        if (!byKind("Service").some((service) => {
          const selector = obj(service.spec, "spec").selector
          return isObj(selector) && Object.entries(selector).every(([k, v]) => labels[k] === v)
        })) problems.push(`${role}: no Service selects it`)
      }
      for (const hpa of byKind("HorizontalPodAutoscaler")) {
        const target = obj(obj(hpa.spec, "spec").scaleTargetRef, "scaleTargetRef")
        if (!named(str(target.kind), str(target.name))) problems.push(`HPA targets missing ${str(target.name)}`)
      }
      assert.isAtLeast(byKind("HorizontalPodAutoscaler").length, 1)
      const policies = byKind("NetworkPolicy").map((p) => obj(p.spec, "spec"))
      if (!policies.some((p) => isObj(p.podSelector) && Object.keys(p.podSelector).length === 0 && arr(p.policyTypes).length === 2 && p.ingress === undefined && p.egress === undefined)) {
        problems.push("no default-deny NetworkPolicy")
      }
      const migrate = named("Job", "cowork-migrate")
      if (!migrate) problems.push("no migration Job")
      if (overlay === "production" && !byKind("ServiceMonitor").length) problems.push("no ServiceMonitor")
      const namespaces = new Set(objects.filter((o) => o.kind !== "Namespace").map((o) => str(obj(o.metadata, "metadata").namespace)))
      assert.strictEqual(namespaces.size, 1, `one namespace: ${[...namespaces].join(", ")}`)
      assert.deepStrictEqual(problems, [])
    })
  }
})
