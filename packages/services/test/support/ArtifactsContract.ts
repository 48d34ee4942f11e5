import { Artifacts, EventLog, ObjectStore, readAll } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Crypto from "node:crypto"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { newSession } from "./ControlPlaneFixtures.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

/** Session artifacts: bytes and metadata stored together, the event on the session's stream, org scoping, limits. */
export const artifactsContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`Artifacts contract: ${harness.name}`, () => {
    it.effect("create stores the bytes with their size and sha256, appends artifact.created, and opens them again", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const session = yield* newSession()
        const artifact = yield* artifacts.create({
          orgId: session.orgId,
          sessionId: session.sessionId,
          name: "notes.txt",
          contentType: "text/plain",
          createdBy: "test",
          body: Stream.make(bytes("hello "), bytes("world")),
          maxBytes: 1_000
        })
        assert.deepInclude(artifact, {
          sessionId: session.sessionId,
          name: "notes.txt",
          contentType: "text/plain",
          sizeBytes: 11,
          sha256: Crypto.createHash("sha256").update("hello world").digest("hex")
        })
        const opened = yield* artifacts.open(session.orgId, session.sessionId, artifact.id)
        assert.deepStrictEqual(opened.artifact, artifact)
        assert.strictEqual(new TextDecoder().decode(yield* readAll(opened.body)), "hello world")
        const events = yield* (yield* EventLog).read(session.sessionId, 0, 10)
        assert.deepStrictEqual(events.at(-1)!.type, "artifact.created")
        assert.deepInclude(events.at(-1)!.payload as object, { artifactId: artifact.id, sizeBytes: 11 })
        const other = yield* newSession()
        assert.strictEqual((yield* Effect.flip(artifacts.open(other.orgId, session.sessionId, artifact.id)))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(artifacts.open(session.orgId, session.sessionId, "art_unknown")))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(artifacts.list(other.orgId, { sessionId: session.sessionId, limit: 10 })))._tag, "NotFound")
      })))

    it.effect("an upload over its limit fails ArtifactTooLarge and leaves nothing behind; a foreign session is NotFound", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const session = yield* newSession()
        const upload = (orgId: string, size: number) =>
          artifacts.create({
            orgId,
            sessionId: session.sessionId,
            name: "big.bin",
            contentType: "application/octet-stream",
            createdBy: "test",
            body: Stream.make(new Uint8Array(size)),
            maxBytes: 10
          })
        assert.strictEqual((yield* Effect.flip(upload(session.orgId, 11)))._tag, "ArtifactTooLarge")
        assert.strictEqual((yield* Effect.flip(upload((yield* newSession()).orgId, 1)))._tag, "NotFound")
        assert.deepStrictEqual(yield* artifacts.list(session.orgId, { limit: 10 }), { artifacts: [], nextCursor: null })
        assert.strictEqual(yield* artifacts.countOrg(session.orgId), 0)
      })))

    it.effect("list pages newest first through the org or one session, without gaps or repeats", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const a = yield* newSession()
        const b = yield* newSession(a.orgId)
        const ids: Array<string> = []
        for (const [i, session] of [a, b, a, a, b].entries()) {
          ids.push((yield* artifacts.create({
            orgId: a.orgId,
            sessionId: session.sessionId,
            name: `f${i}`,
            contentType: "text/plain",
            createdBy: "test",
            body: Stream.make(bytes(`${i}`)),
            maxBytes: 10
          })).id)
        }
        const seen: Array<string> = []
        let cursor: string | undefined
        do {
          const page = yield* artifacts.list(a.orgId, { limit: 2, cursor })
          assert.notProperty(page, "totalEstimate", "a page counts nothing")
          seen.push(...page.artifacts.map((x) => x.id))
          cursor = page.nextCursor ?? undefined
        } while (cursor !== undefined)
        assert.sameMembers(seen, ids)
        assert.strictEqual(new Set(seen).size, 5)
        const onlyB = yield* artifacts.list(a.orgId, { sessionId: b.sessionId, limit: 10 })
        assert.sameMembers(onlyB.artifacts.map((x) => x.name), ["f1", "f4"])
        assert.deepStrictEqual([yield* artifacts.totalEstimate(a.orgId), yield* artifacts.totalEstimate(a.orgId, b.sessionId)], [5, 2])
      })))

    it.effect("bytes per day: the upload that would pass the org's daily quota is RateLimited and leaves no artifact; other orgs count apart", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const session = yield* newSession()
        const put = (orgId: string, sessionId: string, text: string) =>
          artifacts.create({
            orgId,
            sessionId,
            name: "a.txt",
            contentType: "text/plain",
            createdBy: "test",
            body: Stream.make(bytes(text)),
            maxBytes: 1_000,
            bytesPerDay: 10
          })
        yield* put(session.orgId, session.sessionId, "12345678")
        const refused = yield* Effect.flip(put(session.orgId, session.sessionId, "12345"))
        assert.strictEqual(refused._tag, "RateLimited")
        if (refused._tag === "RateLimited") {
          assert.deepStrictEqual(refused.details, { quota: "artifact_bytes_per_day", limit: 10 })
          assert.isAbove(refused.retryAfterMs, 0)
          assert.isAtMost(refused.retryAfterMs, 86_400_000)
        }
        assert.strictEqual((yield* artifacts.list(session.orgId, { limit: 10 })).artifacts.length, 1)
        yield* put(session.orgId, session.sessionId, "12")
        const other = yield* newSession()
        yield* put(other.orgId, other.sessionId, "1234567890")
      })))

    it.effect("orphan objects: the objects under the org's prefix no row of the org names (another org's row does not count)", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const store = yield* ObjectStore
        const put = (orgId: string, sessionId: string, text: string) =>
          artifacts.create({ orgId, sessionId, name: "a.txt", contentType: "text/plain", createdBy: "test", body: Stream.make(bytes(text)), maxBytes: 1_000 })
        const mine = yield* newSession()
        const theirs = yield* newSession()
        yield* put(mine.orgId, mine.sessionId, "kept")
        const their = yield* put(theirs.orgId, theirs.sessionId, "theirs")
        assert.deepStrictEqual(yield* artifacts.orphanObjects(mine.orgId), [])
        const stray = `artifacts/${mine.orgId}/${mine.sessionId}/art_partial`
        const borrowed = `artifacts/${mine.orgId}/${mine.sessionId}/${their.id}`
        yield* store.put(stray, bytes("half an upload"))
        yield* store.put(borrowed, bytes("named like another org's artifact"))
        const orphans = yield* artifacts.orphanObjects(mine.orgId)
        assert.deepStrictEqual(orphans.map((object) => [object.key, object.size]).sort(), [[borrowed, 33], [stray, 14]].sort())
        assert.deepStrictEqual(yield* artifacts.orphanObjects(theirs.orgId), [], "their own artifact is not an orphan of theirs")
      })))

    it.effect("deleteOrg removes every artifact of the org, its objects and any stray object under its prefix; other orgs keep theirs", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const store = yield* ObjectStore
        const put = (orgId: string, sessionId: string, text: string) =>
          artifacts.create({ orgId, sessionId, name: "a.txt", contentType: "text/plain", createdBy: "test", body: Stream.make(bytes(text)), maxBytes: 1_000 })
        const leaving = yield* newSession()
        const second = yield* newSession(leaving.orgId)
        for (const text of ["one", "two"]) yield* put(leaving.orgId, leaving.sessionId, text)
        yield* put(leaving.orgId, second.sessionId, "three")
        yield* store.put(`artifacts/${leaving.orgId}/${leaving.sessionId}/art_partial`, bytes("half an upload"))
        const staying = yield* newSession()
        const kept = yield* put(staying.orgId, staying.sessionId, "mine")

        assert.strictEqual(yield* artifacts.countOrg(leaving.orgId), 3)
        const deleted = yield* artifacts.deleteOrg(leaving.orgId)
        assert.deepStrictEqual(deleted, { artifacts: 3, bytes: 11, strayObjects: 1 })
        assert.strictEqual(yield* artifacts.countOrg(leaving.orgId), 0)
        assert.deepStrictEqual(yield* store.list(`artifacts/${leaving.orgId}/`), [], "no object of the org is left")
        assert.deepStrictEqual((yield* artifacts.list(leaving.orgId, { limit: 10 })).artifacts, [])
        assert.deepStrictEqual(yield* artifacts.deleteOrg(leaving.orgId), { artifacts: 0, bytes: 0, strayObjects: 0 }, "idempotent")

        const opened = yield* artifacts.open(staying.orgId, staying.sessionId, kept.id)
        assert.strictEqual(new TextDecoder().decode(yield* readAll(opened.body)), "mine")
        assert.strictEqual(yield* artifacts.countOrg(staying.orgId), 1)
      })))

    it.effect("deleteOlderThan: artifacts past the age go (objects and rows), per org; newer ones and other orgs stay", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const artifacts = yield* Artifacts
        const store = yield* ObjectStore
        const put = (orgId: string, sessionId: string, text: string) =>
          artifacts.create({ orgId, sessionId, name: "a.txt", contentType: "text/plain", createdBy: "test", body: Stream.make(bytes(text)), maxBytes: 1_000 })
        const acme = yield* newSession()
        const other = yield* newSession()
        const old = yield* put(acme.orgId, acme.sessionId, "old")
        yield* put(other.orgId, other.sessionId, "theirs")
        yield* harness.elapse(2 * 86_400_000)
        const fresh = yield* put(acme.orgId, acme.sessionId, "fresh")

        assert.deepStrictEqual(yield* artifacts.deleteOlderThan(86_400_000, acme.orgId), [{ orgId: acme.orgId, artifacts: 1, bytes: 3 }])
        assert.strictEqual((yield* Effect.flip(artifacts.open(acme.orgId, acme.sessionId, old.id)))._tag, "NotFound")
        assert.strictEqual((yield* store.list(`artifacts/${acme.orgId}/`)).length, 1, "only the fresh one's object is left")
        assert.strictEqual((yield* artifacts.open(acme.orgId, acme.sessionId, fresh.id)).artifact.id, fresh.id)
        assert.strictEqual(yield* artifacts.countOrg(other.orgId), 1, "another org's is untouched by an org-scoped pass")

        const everyOrg = yield* artifacts.deleteOlderThan(86_400_000, undefined)
        assert.deepInclude(everyOrg, { orgId: other.orgId, artifacts: 1, bytes: 6 })
        assert.isFalse(everyOrg.some((org) => org.orgId === acme.orgId), "nothing of acme's is old enough any more")
      })))
  })
