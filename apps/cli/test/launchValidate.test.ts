import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { checkObservability, checkRunbooks, checkTargets, loadTargets, runbookNames, validate } from "../src/ops/LaunchValidate.ts"

const root = Path.resolve(import.meta.dirname, "../../..")

describe("cowork launch validate", () => {
  it.effect("the committed targets, evidence matrix, template, runbooks and dashboards pass", () =>
    Effect.sync(() => {
      const failed = validate(root).filter((f) => !f.ok)
      assert.deepStrictEqual(failed, [])
    }))

  it.effect("a runbook naming a route, metric or variable the code does not have is reported, each by name", () =>
    Effect.sync(() => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-launch-"))
      const file = Path.join(dir, "planted.md")
      Fs.writeFileSync(file, [
        "Check `GET /api/sessions/:id/view` and `POST /api/workflows/:id/{run,pause}` (both exist).",
        "Then `GET /api/imaginary/status` and `POST /api/workflows/:id/explode`; `/webhooks/*` exists, `/api/nowhere/*` does not.",
        "Watch open_cowork_cloud_http_requests_total and open_cowork_cloud_made_up_total.",
        "Set OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS, not OPEN_COWORK_CLOUD_NOT_A_SETTING.",
        "An org's credential OPEN_COWORK_GATEWAY_CRED_ORG_5FA1__TG_BOT (a per-org family), not OPEN_COWORK_GATEWAY_CRED_NO_ORG_KEY."
      ].join("\n"))
      const findings = checkRunbooks(root, [file]).filter((f) => !f.ok).map((f) => f.message.replace(/^.*?: /, ""))
      assert.deepStrictEqual(findings.sort(), [
        "/api/imaginary/status is not a route the code serves",
        "/api/nowhere/* is not a route the code serves",
        "/api/workflows/:id/explode is not a route the code serves",
        "OPEN_COWORK_CLOUD_NOT_A_SETTING is read nowhere in the code",
        "OPEN_COWORK_GATEWAY_CRED_NO_ORG_KEY is read nowhere in the code",
        "open_cowork_cloud_made_up_total is not in the metrics catalog"
      ].sort())
      const names = runbookNames("POST /api/admin/workers/<id>/credentials/<old cid>/revoke", "x.md")
      assert.deepStrictEqual(names.routes.map((r) => r.route), ["/api/admin/workers/<id>/credentials/<old cid>/revoke"])
    }))

  it.effect("targets out of order or missing a gate are reported", () =>
    Effect.sync(() => {
      const targets = structuredClone(loadTargets(root))
      ;(targets.profiles["public-beta"]!.targets as Record<string, number>).sseStreams = 5
      delete (targets.profiles["private-beta"]!.targets as Record<string, number>).errorRate
      const messages = checkTargets(targets).filter((f) => !f.ok).map((f) => f.message)
      assert.include(messages, "private-beta.errorRate is not a number >= 0")
      assert.include(messages, "public-beta.sseStreams (5) is below private-beta.sseStreams (50)")
    }))

  it.effect("dashboards and alerts: every metric they name is in the catalog", () =>
    Effect.sync(() => {
      assert.isTrue(checkObservability(root).every((f) => f.ok))
    }))
})
