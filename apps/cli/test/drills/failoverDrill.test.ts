import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * `cowork drill failover` (short form: 4 sessions) as CI runs it in the `drills` project. The drill exits 1 when a
 * fault does not recover or an invariant fails (deliveries and inbound events through the two gateways included);
 * the JSON report carries a time to recover for every fault.
 */

const main = Path.resolve(import.meta.dirname, "../../src/main.ts")

describe("cowork drill failover", () => {
  it.live("every role (gateways included) killed and restarted, Postgres restarted, the object store cut: nothing lost, acked twice, skipped or delivered twice after dedup", () =>
    Effect.gen(function*() {
      const report = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-failover-report-")), "failover-drill-report.md")
      const result = yield* Effect.promise(() =>
        new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
          ChildProcess.execFile(process.execPath, [main, "drill", "failover", "--report", report, "--sessions", "4"], { timeout: 420_000, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
            resolve({ code: error === null ? 0 : typeof (error as any).code === "number" ? (error as any).code : 1, stdout, stderr })
          })
        })
      )
      assert.strictEqual(result.code, 0, `${result.stdout.slice(-4_000)}\n${result.stderr.slice(-8_000)}`)
      const json = JSON.parse(Fs.readFileSync(report.replace(/\.md$/, ".json"), "utf8"))
      assert.isTrue(json.ok)
      assert.deepStrictEqual(json.faults.map((f: any) => `${f.fault} ${f.target.split(" ")[0]}`), [
        "SIGKILL worker-1", "SIGTERM worker-2", "SIGKILL web-1", "SIGTERM web-2", "SIGKILL scheduler-1", "SIGTERM scheduler-2",
        "SIGKILL gateway-1", "SIGTERM gateway-2", "restart Postgres", "outage object"
      ])
      for (const fault of json.faults) assert.isNumber(fault.timeToRecoverMs, fault.target)
      assert.strictEqual(json.invariants.length, 9)
      assert.isAbove(json.traffic.deliveries, 20, "bound sessions' replies were delivered")
      assert.isAbove(json.traffic.inboundEvents, 5, "inbound provider events were posted during the drill")
      assert.isAbove(json.traffic.promptsAccepted, 20)
      assert.isAbove(json.traffic.sseReconnects, 0, "the web faults made SSE clients resume")
      assert.include(Fs.readFileSync(report, "utf8"), "## Faults and time to recover")
    }), 480_000)
})
