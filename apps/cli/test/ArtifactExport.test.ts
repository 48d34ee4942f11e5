import { Artifacts, layerMemoryControlPlane, SessionStore, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { afterAll } from "vitest"
import { Effect, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { exportOrgArtifacts } from "../src/ops/ArtifactExport.ts"

/** The export's paging over the memory stores (the processes, Postgres and S3 are in adminArtifactsExport.test.ts). */

const created: Array<string> = []
const tempDir = () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-export-pages-"))
  created.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of created) Fs.rmSync(dir, { recursive: true, force: true })
})
const manifestIds = (dir: string) =>
  Fs.readFileSync(Path.join(dir, "manifest.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line).id as string)

it.effect("pages through the org newest first, stops at --since on a page boundary or inside a page, never another org's", () =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const sessions = yield* SessionStore
    const artifacts = yield* Artifacts
    const { orgId } = yield* tokens.createOrg("exporting")
    const other = (yield* tokens.createOrg("other")).orgId
    const mine = [yield* sessions.create(orgId, {}), yield* sessions.create(orgId, {})]
    const theirs = yield* sessions.create(other, {})
    const upload = (org: string, sessionId: string, name: string) =>
      artifacts.create({
        orgId: org,
        sessionId,
        name,
        contentType: "text/plain",
        createdBy: "test",
        body: Stream.make(new TextEncoder().encode(name)),
        maxBytes: 100
      }).pipe(Effect.map((artifact) => artifact.id))
    const old: Array<string> = []
    const recent: Array<string> = []
    for (let i = 0; i < 3; i++) {
      old.push(yield* upload(orgId, mine[i % 2]!.id, `old-${i}`))
      yield* upload(other, theirs.id, `theirs-old-${i}`)
      yield* TestClock.adjust("1 minute")
    }
    yield* TestClock.adjust("2 days")
    const since = new Date(yield* Effect.clockWith((clock) => clock.currentTimeMillis))
    for (let i = 0; i < 4; i++) {
      recent.push(yield* upload(orgId, mine[i % 2]!.id, `recent-${i}`))
      yield* upload(other, theirs.id, `theirs-recent-${i}`)
      yield* TestClock.adjust("1 minute")
    }

    const everything = tempDir()
    const all = yield* exportOrgArtifacts({ orgId, dir: everything, pageSize: 2 })
    assert.deepInclude(all, { artifacts: 7, exported: 7, alreadyExported: 0, failed: 0, since: null })
    assert.deepStrictEqual(manifestIds(everything), [...recent].reverse().concat([...old].reverse()), "newest first, each once")
    assert.sameMembers(Fs.readdirSync(Path.join(everything, "files")), mine.map((session) => session.id))

    // 4 recent artifacts: pages of 2 end exactly at `since`; pages of 3 cross it inside the second page.
    for (const pageSize of [2, 3, 500]) {
      const dir = tempDir()
      const sinceRun = yield* exportOrgArtifacts({ orgId, dir, since, pageSize })
      assert.deepInclude(sinceRun, { artifacts: 4, exported: 4, failed: 0 }, `pages of ${pageSize}`)
      assert.sameMembers(manifestIds(dir), recent)
    }
  }).pipe(Effect.provide(layerMemoryControlPlane)))
