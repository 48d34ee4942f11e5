import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * The layering of the workspace, declared once: what each package may import. Imports point down: apps → adapters
 * (postgres, storage, secrets, runtime) → services → domain; observability and client sit just above domain; roles
 * (web, worker, scheduler) never import each other; only the CLI composes them. The workbench (browser) sees only the
 * domain and the typed client.
 */
const ALLOWED: Readonly<Record<string, ReadonlyArray<string>>> = {
  "@cowork/domain": [],
  "@cowork/observability": ["@cowork/domain"],
  "@cowork/client": ["@cowork/domain"],
  "@cowork/services": ["@cowork/domain", "@cowork/observability"],
  "@cowork/postgres": ["@cowork/domain", "@cowork/observability", "@cowork/services"],
  "@cowork/storage": ["@cowork/domain", "@cowork/observability", "@cowork/services"],
  "@cowork/secrets": ["@cowork/domain", "@cowork/observability", "@cowork/services"],
  "@cowork/runtime": ["@cowork/domain", "@cowork/observability", "@cowork/services"],
  "@cowork/channels": ["@cowork/domain", "@cowork/observability", "@cowork/services"],
  "@cowork/web": [
    "@cowork/domain", "@cowork/observability", "@cowork/client", "@cowork/services",
    "@cowork/postgres", "@cowork/storage", "@cowork/secrets", "@cowork/runtime"
  ],
  "@cowork/worker": [
    "@cowork/domain", "@cowork/observability", "@cowork/services", "@cowork/postgres", "@cowork/storage",
    "@cowork/secrets", "@cowork/runtime"
  ],
  "@cowork/scheduler": [
    "@cowork/domain", "@cowork/observability", "@cowork/services", "@cowork/postgres", "@cowork/storage",
    "@cowork/secrets", "@cowork/runtime"
  ],
  // The browser app: only what runs in a browser (the API definitions and the typed client).
  "@cowork/workbench": ["@cowork/domain", "@cowork/client"],
  "@cowork/gateway": ["@cowork/domain", "@cowork/observability", "@cowork/client", "@cowork/services", "@cowork/channels"],
  "@cowork/cli": [
    "@cowork/domain", "@cowork/observability", "@cowork/client", "@cowork/services", "@cowork/postgres",
    "@cowork/storage", "@cowork/secrets", "@cowork/runtime", "@cowork/channels", "@cowork/web", "@cowork/worker",
    "@cowork/scheduler", "@cowork/gateway"
  ]
}

export interface Workspace {
  /** Directory relative to the repo root, e.g. `packages/services`. */
  readonly dir: string
  readonly name: string
  readonly dependencies: ReadonlyArray<string>
  readonly exports: ReadonlyArray<string>
}

export interface SourceFile {
  readonly path: string
  readonly text: string
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^"']*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*\(?\s*["']([^"']+)["']/g

/** Every module specifier a file imports or re-exports (static, side-effect and dynamic imports). */
export const specifiers = (text: string): ReadonlyArray<string> =>
  [...text.matchAll(SPECIFIER)].map((m) => m[1] ?? m[2]!).filter((s) => s !== undefined)

/**
 * Every boundary violation in `files`: a deep `@cowork/x/...` import, an `@cowork` import the importer's layer
 * forbids (up or sideways), one its package.json does not declare, a relative path into another workspace the layer
 * forbids, and a package exporting more than its index.
 */
export const violations = (workspaces: ReadonlyArray<Workspace>, files: ReadonlyArray<SourceFile>): ReadonlyArray<string> => {
  const found: Array<string> = []
  for (const workspace of workspaces) {
    if (workspace.exports.some((key) => key !== ".")) found.push(`${workspace.name} exports more than its index: ${workspace.exports.join(", ")}`)
  }
  const owner = (path: string) => workspaces.find((w) => path.startsWith(`${w.dir}/`))
  for (const file of files) {
    const from = owner(file.path)
    if (from === undefined) continue
    const allowed = ALLOWED[from.name] ?? []
    for (const specifier of specifiers(file.text)) {
      if (specifier.startsWith("@cowork/")) {
        const [scope, name, ...deep] = specifier.split("/")
        const target = `${scope}/${name}`
        if (deep.length > 0) found.push(`${file.path}: deep import ${specifier} (import "${target}")`)
        if (target === from.name) continue
        if (!allowed.includes(target)) found.push(`${file.path}: ${from.name} may not import ${target} (up or sideways)`)
        else if (!from.dependencies.includes(target)) found.push(`${file.path}: ${target} is not in ${from.dir}/package.json dependencies`)
      } else if (specifier.startsWith(".")) {
        const resolved = Path.posix.normalize(Path.posix.join(Path.posix.dirname(file.path), specifier))
        const into = owner(resolved)
        if (into !== undefined && into !== from && !allowed.includes(into.name)) {
          found.push(`${file.path}: ${from.name} may not reach into ${into.dir} (${specifier})`)
        }
      }
    }
  }
  return found
}

/** The repository's workspaces and their TypeScript files, read from `root`. */
export const readRepository = (root: string) => {
  const workspaces: Array<Workspace> = []
  const files: Array<SourceFile> = []
  const walk = (dir: string) => {
    for (const entry of Fs.readdirSync(Path.join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory() && entry.name !== "node_modules") walk(path)
      else if (entry.isFile() && /\.tsx?$/.test(entry.name)) files.push({ path, text: Fs.readFileSync(Path.join(root, path), "utf8") })
    }
  }
  for (const group of ["packages", "apps"]) {
    for (const entry of Fs.readdirSync(Path.join(root, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      const dir = `${group}/${entry.name}`
      const manifest = JSON.parse(Fs.readFileSync(Path.join(root, dir, "package.json"), "utf8"))
      workspaces.push({
        dir,
        name: manifest.name,
        dependencies: Object.keys(manifest.dependencies ?? {}),
        exports: Object.keys(manifest.exports ?? {})
      })
      walk(dir)
    }
  }
  return { workspaces, files }
}
