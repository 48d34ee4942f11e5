import { CREDENTIAL_ENV_PREFIX } from "@cowork/domain"
import { HTTP_ROUTES, metricOfSeries } from "@cowork/observability"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * `cowork launch validate`: the committed launch-readiness artifacts are coherent and every operator-facing name in
 * them exists in the code (docs/runbooks/launch-readiness.md):
 *
 * - deploy/load/launch-readiness-targets.json: the four profiles, every gate with a number, capacities growing and
 *   latency/lag/error budgets shrinking from one profile to the next;
 * - deploy/load/launch-evidence-matrix.json: the accepted tier covers every evidence category with evidence that
 *   exists (files present, commands that are real `cowork` commands or npm scripts); other tiers say why not;
 * - docs/launch/launch-readiness-report-template.md: every section the gates require;
 * - docs/runbooks/*.md: every route, metric and OPEN_COWORK_* variable they name exists in the code;
 * - deploy/observability: the dashboard and the alert rules only name metrics the catalog declares (emitted).
 */

export const PROFILES = ["local-self-host-beta", "private-beta", "public-beta", "enterprise-scale"] as const
export type Profile = (typeof PROFILES)[number]

/** Every gate: capacity gates are met at or above the target ("min"), budgets at or below it ("max"). */
export const GATES = {
  sseStreams: "min",
  storedThreads: "min",
  promptsPerMinute: "min",
  activeWorkerSessions: "min",
  workflowRunsPerMinute: "min",
  gatewayMessagesPerMinute: "min",
  p95ReadMs: "max",
  p95MutationMs: "max",
  projectionLagEvents: "max",
  oldestCommandAgeSeconds: "max",
  errorRate: "max"
} as const
export type Gate = keyof typeof GATES

const EVIDENCE_CATEGORIES = [
  "loadAndSoak",
  "failoverAndRecovery",
  "backupAndRestore",
  "securityBoundaries",
  "releaseAndPackaging"
] as const

const TEMPLATE_SECTIONS = [
  "## Release candidate",
  "## Go / no-go",
  "## Load test report",
  "## Soak test report",
  "## Failover and recovery evidence",
  "## Restore and backup evidence",
  "## Security boundary evidence",
  "## Cost and scaling notes",
  "## Known limits",
  "## Findings"
]

export interface Finding {
  readonly area: string
  readonly ok: boolean
  readonly message: string
}

export interface Targets {
  readonly profiles: Record<string, { readonly description?: string; readonly targets: Record<string, number> }>
}

const readJson = (file: string): unknown => JSON.parse(Fs.readFileSync(file, "utf8"))

export const loadTargets = (root: string): Targets =>
  readJson(Path.join(root, "deploy/load/launch-readiness-targets.json")) as Targets

export const checkTargets = (targets: Targets): Array<Finding> => {
  const out: Array<Finding> = []
  const area = "targets"
  for (const profile of PROFILES) {
    const entry = targets.profiles?.[profile]
    if (entry === undefined) {
      out.push({ area, ok: false, message: `profile ${profile} missing` })
      continue
    }
    for (const gate of Object.keys(GATES) as Array<Gate>) {
      const value = entry.targets?.[gate]
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) out.push({ area, ok: false, message: `${profile}.${gate} is not a number >= 0` })
    }
  }
  for (let i = 1; i < PROFILES.length; i++) {
    const lower = targets.profiles?.[PROFILES[i - 1]!]?.targets
    const higher = targets.profiles?.[PROFILES[i]!]?.targets
    if (lower === undefined || higher === undefined) continue
    for (const [gate, direction] of Object.entries(GATES)) {
      const a = lower[gate]!
      const b = higher[gate]!
      const ok = direction === "min" ? b >= a : b <= a
      if (!ok) out.push({ area, ok, message: `${PROFILES[i]}.${gate} (${b}) is ${direction === "min" ? "below" : "above"} ${PROFILES[i - 1]}.${gate} (${a})` })
    }
  }
  if (out.length === 0) out.push({ area, ok: true, message: `${PROFILES.length} profiles × ${Object.keys(GATES).length} gates, ordered` })
  return out
}

/** `cowork <sub> <sub>` commands main.ts declares (read from the command files, so this needs no CLI runtime). */
const knownCommands = (root: string): Set<string> => {
  const commands = new Set<string>()
  const dir = Path.join(root, "apps/cli/src/commands")
  for (const file of Fs.readdirSync(dir)) {
    const text = Fs.readFileSync(Path.join(dir, file), "utf8")
    for (const match of text.matchAll(/\bmake\("([a-z-]+)"/g)) commands.add(match[1]!)
  }
  return commands
}

interface EvidenceRef {
  readonly kind: "file" | "command" | "test"
  readonly ref: string
}

interface Matrix {
  readonly acceptedTier: string
  readonly tiers: Record<string, {
    readonly accepted: boolean
    readonly reason?: string
    readonly categories?: Record<string, { readonly status: string; readonly evidence: ReadonlyArray<EvidenceRef> }>
  }>
}

const checkEvidenceMatrix = (root: string): Array<Finding> => {
  const area = "evidence matrix"
  const out: Array<Finding> = []
  const matrix = readJson(Path.join(root, "deploy/load/launch-evidence-matrix.json")) as Matrix
  const scripts = Object.keys((readJson(Path.join(root, "package.json")) as { scripts: Record<string, string> }).scripts)
  const commands = knownCommands(root)
  const accepted = matrix.tiers?.[matrix.acceptedTier]
  if (accepted === undefined || accepted.accepted !== true) {
    out.push({ area, ok: false, message: `acceptedTier ${matrix.acceptedTier} is not an accepted tier of the matrix` })
  }
  for (const [tier, entry] of Object.entries(matrix.tiers ?? {})) {
    if (!(PROFILES as ReadonlyArray<string>).includes(tier) && tier !== "general-availability") {
      out.push({ area, ok: false, message: `unknown tier ${tier}` })
    }
    if (entry.accepted !== true) {
      if (typeof entry.reason !== "string" || entry.reason.length < 10) out.push({ area, ok: false, message: `${tier} is not accepted but gives no reason` })
      continue
    }
    for (const category of EVIDENCE_CATEGORIES) {
      const item = entry.categories?.[category]
      if (item === undefined || item.status !== "evidence" || item.evidence.length === 0) {
        out.push({ area, ok: false, message: `${tier}: category ${category} has no evidence (an accepted tier needs all five)` })
        continue
      }
      for (const evidence of item.evidence) {
        if (evidence.kind === "file" || evidence.kind === "test") {
          if (!Fs.existsSync(Path.join(root, evidence.ref))) out.push({ area, ok: false, message: `${tier}.${category}: ${evidence.ref} does not exist` })
        } else {
          const words = evidence.ref.split(/\s+/)
          const flag = words.findIndex((w) => w.startsWith("-"))
          const path = words.slice(1, flag === -1 ? undefined : flag)
          const ok = words[0] === "cowork" ? path.length > 0 && path.every((w) => commands.has(w))
            : words[0] === "npm" ? scripts.includes(words[0] === "npm" && words[1] === "run" ? words[2]! : words[1]!)
            : false
          if (!ok) out.push({ area, ok: false, message: `${tier}.${category}: command "${evidence.ref}" is not a cowork command or npm script` })
        }
      }
    }
  }
  if (!out.some((f) => !f.ok)) out.push({ area, ok: true, message: `accepted tier ${matrix.acceptedTier}: all ${EVIDENCE_CATEGORIES.length} categories have evidence that exists` })
  return out
}

const checkTemplate = (root: string): Array<Finding> => {
  const area = "report template"
  const text = Fs.readFileSync(Path.join(root, "docs/launch/launch-readiness-report-template.md"), "utf8")
  const missing = TEMPLATE_SECTIONS.filter((section) => !text.includes(section))
  return missing.length === 0
    ? [{ area, ok: true, message: `${TEMPLATE_SECTIONS.length} required sections present` }]
    : missing.map((section) => ({ area, ok: false, message: `missing section "${section}"` }))
}

const walk = (dir: string, keep: (file: string) => boolean, out: Array<string> = []): Array<string> => {
  if (!Fs.existsSync(dir)) return out
  for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist" || entry.name === "test") continue
    const full = Path.join(dir, entry.name)
    if (entry.isDirectory()) walk(full, keep, out)
    else if (keep(full)) out.push(full)
  }
  return out
}

/** The source the checks search: every app's and package's src, and the container entry point. */
const sourceText = (root: string): string =>
  [
    ...walk(Path.join(root, "apps"), (f) => /\/src\//.test(f) && /\.(ts|tsx)$/.test(f)),
    ...walk(Path.join(root, "packages"), (f) => /\/src\//.test(f) && /\.ts$/.test(f)),
    Path.join(root, "deploy/docker/entrypoint.sh")
  ].filter((f) => Fs.existsSync(f)).map((f) => Fs.readFileSync(f, "utf8")).join("\n")

const normalizeRoute = (route: string) =>
  route.replace(/\?.*$/, "").replace(/\/:[A-Za-z_]+/g, "/:").replace(/\/<[^>]*>/g, "/:").replace(/\/$/, "") || "/"

/** `POST /api/x/{a,b}` → both paths. */
const expandBraces = (route: string): Array<string> => {
  const match = /\{([^}]+)\}/.exec(route)
  if (match === null) return [route]
  return match[1]!.split(",").flatMap((alt) => expandBraces(route.replace(match[0], alt.trim())))
}

/** Route templates the code serves: the web's route catalog plus every route literal in apps/*\/src. */
const codeRoutes = (root: string, source = sourceText(root)): Set<string> => {
  const routes = new Set<string>(HTTP_ROUTES.map(normalizeRoute))
  for (const match of source.matchAll(/["'`](\/(?:api|auth|webhooks|healthz|livez|readyz|metrics|health|ready|diagnostics|deliveries|openapi\.json)[^"'`\s]*)["'`]/g)) {
    routes.add(normalizeRoute(match[1]!.replace(/\$\{[^}]+\}/g, ":x")))
  }
  return routes
}

export interface RunbookNames {
  readonly routes: ReadonlyArray<{ readonly file: string; readonly route: string }>
  readonly metrics: ReadonlyArray<{ readonly file: string; readonly metric: string }>
  readonly env: ReadonlyArray<{ readonly file: string; readonly name: string }>
}

export const runbookNames = (text: string, file: string): RunbookNames => {
  const routes: Array<{ file: string; route: string }> = []
  const pattern = /\b(?:GET|POST|PUT|PATCH|DELETE)\s+(\/(?:api|auth|webhooks|healthz|livez|readyz|metrics|health|ready|diagnostics|deliveries)(?:[A-Za-z0-9_/:.{},-]|<[^>]*>)*)/g
  for (const match of text.matchAll(pattern)) {
    for (const route of expandBraces(match[1]!.replace(/[.,]$/, ""))) routes.push({ file, route })
  }
  for (const match of text.matchAll(/`(\/(?:api|auth|webhooks)\/(?:[A-Za-z0-9_/:.{},*-]|<[^>]*>)*)[^`]*`/g)) {
    for (const route of expandBraces(match[1]!)) routes.push({ file, route })
  }
  const metrics = [...text.matchAll(/\bopen_cowork_(?:cloud|gateway)_[a-z0-9_]*[a-z0-9]/g)].map((m) => ({ file, metric: m[0] }))
  const env = [...text.matchAll(/\bOPEN_COWORK_[A-Z0-9_]+/g)].map((m) => ({ file, name: m[0] }))
  return { routes, metrics, env }
}

export const checkRunbooks = (root: string, files?: ReadonlyArray<string>): Array<Finding> => {
  const source = sourceText(root)
  const routes = codeRoutes(root, source)
  const out: Array<Finding> = []
  const list = files ?? Fs.readdirSync(Path.join(root, "docs/runbooks")).filter((f) => f.endsWith(".md")).map((f) => Path.join(root, "docs/runbooks", f))
  let counted = { routes: 0, metrics: 0, env: 0 }
  for (const file of list) {
    const rel = Path.relative(root, file)
    const names = runbookNames(Fs.readFileSync(file, "utf8"), rel)
    for (const { route } of names.routes) {
      counted.routes++
      // `/webhooks/*`: a family of routes; some route must live under the prefix.
      const known = route.endsWith("/*")
        ? [...routes].some((r) => r.startsWith(route.slice(0, -1)))
        : routes.has(normalizeRoute(route))
      if (!known) out.push({ area: "runbook routes", ok: false, message: `${rel}: ${route} is not a route the code serves` })
    }
    for (const { metric } of names.metrics) {
      counted.metrics++
      if (metricOfSeries(metric) === undefined) out.push({ area: "runbook metrics", ok: false, message: `${rel}: ${metric} is not in the metrics catalog` })
    }
    for (const { name } of names.env) {
      counted.env++
      // `OPEN_COWORK_X_*` written as a family: the prefix must occur; `<NAME>_FILE` is the entry point's generic form.
      const stem = name.replace(/_+$/, "")
      // A per-org binding credential (`OPEN_COWORK_GATEWAY_CRED_<ORGKEY>__<NAME>`) is named by the operator: its family
      // prefix must occur.
      const found = source.includes(name) || (name.endsWith("_") && source.includes(stem)) ||
        (name.endsWith("_FILE") && source.includes(name.slice(0, -"_FILE".length))) ||
        (name.startsWith(CREDENTIAL_ENV_PREFIX) && name.includes("__", CREDENTIAL_ENV_PREFIX.length) && source.includes(CREDENTIAL_ENV_PREFIX))
      if (!found) out.push({ area: "runbook env", ok: false, message: `${rel}: ${name} is read nowhere in the code` })
    }
  }
  if (!out.some((f) => !f.ok)) {
    out.push({ area: "runbooks", ok: true, message: `${list.length} runbooks: ${counted.routes} route, ${counted.metrics} metric and ${counted.env} env references all exist` })
  }
  return out
}

export const checkObservability = (root: string): Array<Finding> => {
  const out: Array<Finding> = []
  let names = 0
  for (const rel of ["deploy/observability/grafana-dashboard.json", "deploy/observability/prometheus-alerts.yml"]) {
    const file = Path.join(root, rel)
    if (!Fs.existsSync(file)) {
      out.push({ area: "dashboards/alerts", ok: false, message: `${rel} missing` })
      continue
    }
    for (const match of Fs.readFileSync(file, "utf8").matchAll(/\bopen_cowork_[a-z0-9_]*[a-z0-9]/g)) {
      names++
      if (metricOfSeries(match[0]) === undefined) out.push({ area: "dashboards/alerts", ok: false, message: `${rel}: ${match[0]} is not an emitted metric` })
    }
  }
  if (!out.some((f) => !f.ok)) out.push({ area: "dashboards/alerts", ok: true, message: `${names} metric references, all in the catalog` })
  return out
}

export const validate = (root: string): Array<Finding> => {
  const guard = (area: string, run: () => Array<Finding>): Array<Finding> => {
    try {
      return run()
    } catch (error) {
      return [{ area, ok: false, message: error instanceof Error ? error.message : String(error) }]
    }
  }
  return [
    ...guard("targets", () => checkTargets(loadTargets(root))),
    ...guard("evidence matrix", () => checkEvidenceMatrix(root)),
    ...guard("report template", () => checkTemplate(root)),
    ...guard("runbooks", () => checkRunbooks(root)),
    ...guard("dashboards/alerts", () => checkObservability(root))
  ]
}
