import { Artifacts, layerMemoryControlPlane, ObjectStore, SessionStore, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { afterAll } from "vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
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

/** An org with two artifacts in one session. */
const twoArtifacts = Effect.gen(function*() {
  const { orgId } = yield* (yield* Tokens).createOrg("locked")
  const session = yield* (yield* SessionStore).create(orgId, {})
  const artifacts = yield* Artifacts
  for (const name of ["a.txt", "b.txt"]) {
    yield* artifacts.create({
      orgId,
      sessionId: session.id,
      name,
      contentType: "text/plain",
      createdBy: "test",
      body: Stream.make(new TextEncoder().encode(name)),
      maxBytes: 100
    })
  }
  return { orgId, sessionId: session.id }
})

const failureMessage = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => (error as { readonly message: string }).message)

it.effect("two exports into one directory at once: the second is refused while the first holds the lock, and touches nothing", () =>
  Effect.gen(function*() {
    const { orgId } = yield* twoArtifacts
    const dir = tempDir()
    // Each export's downloads wait for `release`; the first download of each says it got that far.
    const release = yield* Deferred.make<void>()
    const artifacts = yield* Artifacts
    const gated = (downloading: Deferred.Deferred<void>) =>
      exportOrgArtifacts({ orgId, dir }).pipe(Effect.provideService(
        Artifacts,
        Artifacts.of({
          ...artifacts,
          open: (...args) =>
            Deferred.succeed(downloading, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.andThen(artifacts.open(...args)))
        })
      ))
    const firstDownloading = yield* Deferred.make<void>()
    const secondDownloading = yield* Deferred.make<void>()
    const first = yield* Effect.forkChild(gated(firstDownloading))
    yield* Deferred.await(firstDownloading)
    const refused = yield* Effect.raceFirst(
      failureMessage(gated(secondDownloading)),
      Effect.as(Deferred.await(secondDownloading), "the second export went on to download")
    )
    assert.include(refused, `another export holds it (pid ${process.pid}, since `)
    assert.include(refused, "wait for it to finish")
    assert.isTrue(Fs.existsSync(Path.join(dir, "export.lock")), "the first still holds it")
    yield* Deferred.succeed(release, undefined)
    assert.deepInclude(yield* Fiber.join(first), { artifacts: 2, exported: 2, failed: 0 })
    assert.strictEqual(manifestIds(dir).length, 2)
    assert.isFalse(Fs.existsSync(Path.join(dir, "export.lock")), "released at the end")
  }).pipe(Effect.provide(layerMemoryControlPlane)))

it.effect("a stale lock (its process gone, this host) is taken over; another host's, or an unreadable one, is refused naming the file", () =>
  Effect.gen(function*() {
    const { orgId } = yield* twoArtifacts
    const lockOf = (dir: string, holder: unknown) => {
      Fs.writeFileSync(Path.join(dir, "export.lock"), typeof holder === "string" ? holder : JSON.stringify(holder))
      return Path.join(dir, "export.lock")
    }
    // No process has a pid above the kernel's limit (2^22): this holder is gone.
    const stale = tempDir()
    lockOf(stale, { pid: 2 ** 22 + 1, hostname: Os.hostname(), startedAt: "2026-11-30T00:00:00.000Z" })
    assert.deepInclude(yield* exportOrgArtifacts({ orgId, dir: stale }), { exported: 2 })
    assert.deepStrictEqual(Fs.readdirSync(stale).sort(), ["export.json", "files", "manifest.jsonl", "orphans.jsonl"])

    const shared = tempDir()
    const remote = lockOf(shared, { pid: 4242, hostname: "elsewhere.example", startedAt: "2026-11-30T00:00:00.000Z" })
    const fromElsewhere = yield* failureMessage(exportOrgArtifacts({ orgId, dir: shared }))
    assert.include(fromElsewhere, `another export holds it (pid 4242 on elsewhere.example, since 2026-11-30T00:00:00.000Z); if it no longer runs, remove ${remote}`)
    const garbled = tempDir()
    const unreadable = lockOf(garbled, "{\"pid\":")
    assert.include(yield* failureMessage(exportOrgArtifacts({ orgId, dir: garbled })), `${unreadable} cannot be read as a lock`)
    for (const dir of [shared, garbled]) assert.deepStrictEqual(Fs.readdirSync(dir), ["export.lock"], "nothing else written")
  }).pipe(Effect.provide(layerMemoryControlPlane)))

it.effect("objects under the org's prefix that no row names are reported as orphans (summary and orphans.jsonl), never exported", () =>
  Effect.gen(function*() {
    const { orgId, sessionId } = yield* twoArtifacts
    const store = yield* ObjectStore
    const stray = `artifacts/${orgId}/${sessionId}/art_stray`
    yield* store.put(stray, new TextEncoder().encode("left by a failed upload"))
    const dir = tempDir()
    const summary = yield* exportOrgArtifacts({ orgId, dir })
    assert.deepInclude(summary, { artifacts: 2, exported: 2, failed: 0, orphans: 1, orphanObjects: [{ key: stray, sizeBytes: 23 }] })
    assert.deepStrictEqual(Fs.readFileSync(Path.join(dir, "orphans.jsonl"), "utf8"), `${JSON.stringify({ key: stray, sizeBytes: 23 })}\n`)
    assert.notInclude(manifestIds(dir), "art_stray")
    assert.isFalse(Fs.existsSync(Path.join(dir, "files", sessionId, "art_stray")))
    // Rerun after the stray is gone: the list is of the last run.
    yield* store.delete(stray)
    assert.deepInclude(yield* exportOrgArtifacts({ orgId, dir }), { alreadyExported: 2, orphans: 0 })
    assert.strictEqual(Fs.readFileSync(Path.join(dir, "orphans.jsonl"), "utf8"), "")
  }).pipe(Effect.provide(layerMemoryControlPlane)))
