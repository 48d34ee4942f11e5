import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * `cowork load --profile local-self-host-beta` (short window) as CI runs it in the `drills` project: every gate is
 * measured (the gateway's through a real `cowork gateway` and a fake provider) and must pass, so the decision is go.
 * A no-go exits 1.
 */

const main = Path.resolve(import.meta.dirname, "../../src/main.ts")

describe("cowork load", () => {
  it.live("local-self-host-beta: every gate measured and passing, gateway in/out included → go", () =>
    Effect.gen(function*() {
      const out = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-load-report-"))
      const result = yield* Effect.promise(() =>
        new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
          ChildProcess.execFile(process.execPath, [main, "load", "--profile", "local-self-host-beta", "--duration-ms", "40000", "--output-dir", out], { timeout: 300_000, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
            resolve({ code: error === null ? 0 : typeof (error as any).code === "number" ? (error as any).code : 1, stdout, stderr })
          })
        })
      )
      assert.strictEqual(result.code, 0, `${result.stdout.slice(-4_000)}\n${result.stderr.slice(-6_000)}`)
      const report = JSON.parse(Fs.readFileSync(Path.join(out, "load-local-self-host-beta.json"), "utf8"))
      for (const gate of report.gates) {
        assert.strictEqual(gate.result, "pass", `${gate.gate}: measured ${gate.measured} vs target ${gate.target}`)
        assert.isNumber(gate.measured)
      }
      assert.strictEqual(report.decision, "go")
      assert.strictEqual(report.traffic.sseStreamsOpenAtEnd, 10)
      assert.isAbove(report.traffic.gatewayInboundAccepted, 0)
      assert.strictEqual(report.traffic.gatewayDeliveriesReceived, report.traffic.gatewayDeliveries, "every delivery reached the fake provider")
      assert.isNumber(report.traffic.gatewayDeliveryLatencyP95Ms)
      assert.isAbove(report.traffic.promptsAcked, 0)
      assert.containsAllKeys(report.processes, ["web", "worker-1", "scheduler", "gateway"])
      const markdown = Fs.readFileSync(Path.join(out, "load-local-self-host-beta.md"), "utf8")
      for (const section of ["## Go / no-go", "## Load test report", "## Cost and scaling notes", "**go**"]) assert.include(markdown, section)
    }), 360_000)
})
