import { metricNames } from "@cowork/observability"
import { ListenHost } from "@cowork/services"
import { WorkerConfig } from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"

/** What the README and the runbooks state as fact about the code, checked against the code. */

const repoRoot = Path.resolve(import.meta.dirname, "../../..")
const read = (file: string) => Fs.readFileSync(Path.join(repoRoot, file), "utf8")

/** The README configuration table's default for `variable` (the second column, without backticks). */
const readmeDefault = (variable: string) => {
  const row = read("README.md").split("\n").find((line) => line.startsWith(`| \`${variable}\` |`))
  assert.isDefined(row, `README documents ${variable}`)
  return row!.split("|")[2]!.trim().replaceAll("`", "")
}

const sourceFiles = (dir: string): Array<string> =>
  Fs.readdirSync(Path.join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => Path.relative(repoRoot, Path.join(entry.parentPath, entry.name)))
    .filter((file) => file.includes(`${Path.sep}src${Path.sep}`))

it.effect("the README's defaults for the poll interval and the listen host are the code's", () =>
  Effect.gen(function*() {
    const worker = yield* WorkerConfig
    assert.strictEqual(readmeDefault("OPEN_COWORK_CLOUD_POLL_INTERVAL_MS"), String(worker.pollIntervalMs))
    const host = yield* ListenHost.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({}))))
    assert.strictEqual(readmeDefault("OPEN_COWORK_CLOUD_HOST"), host)
  }).pipe(Effect.provide(WorkerConfig.layerWith({}))))

it("code comments point only at documents that are in the repository", () => {
  const dangling: Array<string> = []
  for (const file of [...sourceFiles("apps"), ...sourceFiles("packages")]) {
    for (const [index, line] of read(file).split("\n").entries()) {
      // Document references (docs/..., shared/..., API.md, README.md), not file names the code writes.
      for (const match of line.matchAll(/\b((?:shared|docs)\/[\w./-]+\.md|[A-Z][A-Z_]*\.md)\b/g)) {
        const target = match[1]!
        const exists = [repoRoot, Path.dirname(Path.join(repoRoot, file))].some((base) => Fs.existsSync(Path.join(base, target)))
        if (!exists) dangling.push(`${file}:${index + 1} → ${target}`)
      }
    }
  }
  assert.deepStrictEqual(dangling, [])
})

it("a metric count the operations runbook states is the catalog's", () => {
  const catalog = metricNames().filter((name) => name.startsWith("open_cowork_cloud_")).length
  for (const match of read("docs/runbooks/operations.md").matchAll(/\b(\d+)\s+`open_cowork_cloud_\*`/g)) {
    assert.strictEqual(Number(match[1]), catalog, "the runbook's count of open_cowork_cloud_* families")
  }
})

it("the README's configuration table names every OPEN_COWORK_* variable the code reads", () => {
  const table = new Set(
    read("README.md").split("\n").flatMap((line) => /^\| `(OPEN_COWORK_[A-Z0-9_]+)` \|/.exec(line)?.slice(1) ?? [])
  )
  const read_ = new Set<string>()
  for (const file of [...sourceFiles("apps"), ...sourceFiles("packages")]) {
    for (const match of read(file).matchAll(/\bOPEN_COWORK_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      // Not a variable: a family's prefix (`OPEN_COWORK_CLOUD_QUOTA_…`) or an example of a per-org credential name.
      if (!match[0].includes("__")) read_.add(match[0])
    }
  }
  assert.deepStrictEqual([...read_].filter((name) => !table.has(name)).sort(), [])
})
