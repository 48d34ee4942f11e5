import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as ChildProcess from "node:child_process"

/**
 * `cowork drill restore` as CI runs it (the `drills` project: `COWORK_DRILLS=1 npx vitest run --project drills`,
 * its own .ci/run step; not part of `npm test`). The drill exits 1 when any check fails (the gateway's included:
 * deliveries pending at the backup arrive once after the restore); the report must carry the runbook's fields.
 */

const main = Path.resolve(import.meta.dirname, "../../src/main.ts")

const runDrill = (args: ReadonlyArray<string>) =>
  Effect.promise(() =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      ChildProcess.execFile(process.execPath, [main, ...args], { timeout: 420_000, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof (error as any).code === "number" ? (error as any).code : 1, stdout, stderr })
      })
    })
  )

describe("cowork drill restore", () => {
  it.live("seeds, backs up, restores into a new database + store, and every runbook check passes", () =>
    Effect.gen(function*() {
      const report = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-drill-report-")), "restore-drill-report.md")
      const result = yield* runDrill(["drill", "restore", "--report", report, "--sessions", "3"])
      assert.strictEqual(result.code, 0, `${result.stdout.slice(-4_000)}\n${result.stderr.slice(-8_000)}`)
      const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!)
      assert.isTrue(summary.ok)
      assert.isTrue(summary.refusal.ok, "restore refused while a worker was attached")
      assert.isAtLeast(summary.checks.length, 19)
      const markdown = Fs.readFileSync(report, "utf8")
      for (const field of [
        "Environment:", "Restore target:", "Postgres backup source:", "Object-store snapshot used:", "Secret manager / KMS references:",
        // 3 seeded, 1 workflow run's, 1 created by the inbound provider event
        "## Counts before and after restore", "| sessions (cloud_sessions) | 5 | 5 |", "projections (cloud_session_projections)", "artifacts (cloud_artifacts) | 4 | 4 |",
        "workflows (cloud_workflows) | 2 | 2 |", "| channel bindings (cloud_channel_bindings) | 1 | 1 |", "| gateway provider events and signature replay keys (cloud_channel_provider_events) | 2 | 2 |",
        "deliveries by status", "| + gateway | gateway started last: every delivery pending at the backup arrives at the provider exactly once | pass |",
        "## Smoke commands and results", "## Intentionally excluded", "## Follow-up fixes and owner"
      ]) assert.include(markdown, field)
      assert.notInclude(markdown, Os.tmpdir(), "no local paths in the report")
      assert.notInclude(markdown, "FAIL")
      const json = JSON.parse(Fs.readFileSync(report.replace(/\.md$/, ".json"), "utf8"))
      for (const [table, counts] of Object.entries(json.tables as Record<string, { before: number; after: number }>)) {
        assert.strictEqual(counts.after, counts.before, table)
      }
    }), 450_000)
})
