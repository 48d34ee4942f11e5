import { NotFound } from "@cowork/domain"
import { CommandQueue, EventLog, SessionStore, Threads } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claim, newOrg } from "./ControlPlaneFixtures.ts"

/** The thread views over sessions: keyset list with filters, tags, smart filters with counts, rename / re-tag. */
export const threadsContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`Threads contract: ${harness.name}`, () => {
    it.effect("lists the org's sessions as threads, newest first, in keyset pages; filters by tag, title and smart filter", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const threads = yield* Threads
        const orgId = yield* newOrg
        const made: Array<string> = []
        for (const [title, tags, createdBy] of [
          ["Alpha report", ["research", "q3"], "account:alice"],
          ["beta notes", ["q3"], "token:bob"],
          ["gamma", [], "account:alice"],
          ["delta report", ["research", "research"], "token:bob"],
          ["epsilon", ["ops"], undefined]
        ] as const) {
          made.push((yield* sessions.create(orgId, { title, tags: [...tags], createdBy })).id)
        }
        yield* sessions.create(yield* newOrg, { title: "another org's report", tags: ["research"] })

        const seen: Array<string> = []
        let cursor: string | undefined
        do {
          const page = yield* threads.list(orgId, "account:alice", { limit: 2, cursor })
          assert.strictEqual(page.totalEstimate, 5)
          seen.push(...page.threads.map((t) => t.id))
          cursor = page.nextCursor ?? undefined
        } while (cursor !== undefined)
        assert.sameMembers(seen, made)
        assert.strictEqual(new Set(seen).size, 5, "no gap, no repeat")
        const whole = (yield* threads.list(orgId, "account:alice", { limit: 10 })).threads
        assert.deepStrictEqual(seen, whole.map((t) => t.id), "pages follow the one order")
        const keys = whole.map((t) => `${t.createdAt} ${t.id}`)
        assert.deepStrictEqual(keys, [...keys].sort().reverse(), "newest first")

        const first = (yield* threads.list(orgId, "account:alice", { limit: 10 })).threads.find((t) => t.id === made[3])!
        assert.deepInclude(first, { title: "delta report", status: "idle", profileName: "default", createdBy: "token:bob", lastSequence: 1 })
        assert.deepStrictEqual(first.tags, ["research"], "duplicates dropped")
        const titles = (query: Parameters<Threads["Service"]["list"]>[2], viewer = "account:alice") =>
          Effect.map(threads.list(orgId, viewer, query), (page) => page.threads.map((t) => t.title))
        assert.sameMembers(yield* titles({ limit: 10, tag: "research" }), ["delta report", "Alpha report"])
        assert.deepStrictEqual(yield* titles({ limit: 10, tag: "q3", q: "NOTES" }), ["beta notes"])
        assert.sameMembers(yield* titles({ limit: 10, filter: "mine" }), ["gamma", "Alpha report"])
        assert.sameMembers(yield* titles({ limit: 10, filter: "mine" }, "token:bob"), ["delta report", "beta notes"])
        assert.strictEqual((yield* titles({ limit: 10, filter: "recent" })).length, 5)
        assert.deepStrictEqual(yield* titles({ limit: 10, filter: "running" }), [])

        assert.deepStrictEqual(yield* threads.tags(orgId), [
          { tag: "q3", count: 2 }, { tag: "research", count: 2 }, { tag: "ops", count: 1 }
        ])
      })))

    it.effect("a tag is matched as written, even one spelled like a smart filter's parameter (viewer, recent)", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const threads = yield* Threads
        const orgId = yield* newOrg
        yield* sessions.create(orgId, { title: "tagged viewer", tags: ["viewer"], createdBy: "account:alice" })
        yield* sessions.create(orgId, { title: "tagged recent", tags: ["recent"], createdBy: "account:alice" })
        const titles = (tag: string) =>
          Effect.map(threads.list(orgId, "account:alice", { limit: 10, tag }), (page) => page.threads.map((t) => t.title))
        assert.deepStrictEqual(yield* titles("viewer"), ["tagged viewer"])
        assert.deepStrictEqual(yield* titles("recent"), ["tagged recent"])
        assert.deepStrictEqual(yield* titles("account:alice"), [])
      })))

    it.effect("smart filters count running, failed, mine and recent sessions; recent forgets sessions idle for a day", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const threads = yield* Threads
        const log = yield* EventLog
        const queue = yield* CommandQueue
        const orgId = yield* newOrg
        const running = yield* sessions.create(orgId, { title: "running", createdBy: "account:alice" })
        const failed = yield* sessions.create(orgId, { title: "failed", createdBy: "account:bob" })
        yield* sessions.create(orgId, { title: "quiet" })
        for (const session of [running, failed]) yield* sessions.prompt(orgId, session.id, { text: "go" })
        const leases = yield* claim("w1", 100)
        const runningLease = leases.find((l) => l.sessionId === running.id)!
        const turn = Option.getOrThrow(yield* queue.next(runningLease))
        yield* log.append(runningLease, [{ type: "session.status", payload: { status: "running", commandId: turn.id }, commandId: turn.id, attempt: 1 }])
        const failedLease = leases.find((l) => l.sessionId === failed.id)!
        const broken = Option.getOrThrow(yield* queue.next(failedLease))
        yield* log.append(failedLease, [
          { type: "runtime.error", payload: { message: "boom", commandId: broken.id }, commandId: broken.id, attempt: 1 },
          { type: "session.idle", payload: { commandId: broken.id, outcome: "failed" }, commandId: broken.id, attempt: 1 }
        ], { commandId: broken.id, outcome: "failed", error: "boom" })

        const counts = (viewer: string) =>
          Effect.map(threads.smartFilters(orgId, viewer), (filters) => Object.fromEntries(filters.map((f) => [f.id, f.count])))
        assert.deepStrictEqual(yield* counts("account:alice"), { running: 1, failed: 1, mine: 1, recent: 3 })
        const filters = yield* threads.smartFilters(orgId, "account:alice")
        assert.deepStrictEqual(filters.map((f) => [f.id, f.query]), [
          ["running", "filter=running"], ["failed", "filter=failed"], ["mine", "filter=mine"], ["recent", "filter=recent"]
        ])
        assert.deepStrictEqual((yield* threads.list(orgId, "x", { limit: 10, filter: "failed" })).threads.map((t) => t.id), [failed.id])
        assert.deepStrictEqual((yield* threads.list(orgId, "x", { limit: 10, filter: "running" })).threads.map((t) => t.id), [running.id])
        yield* harness.elapse(25 * 60 * 60 * 1000)
        assert.strictEqual((yield* counts("account:alice")).recent, 0)
        assert.deepStrictEqual((yield* threads.smartFilters(yield* newOrg, "account:alice")).map((f) => f.count), [0, 0, 0, 0], "org-scoped")
      })))

    it.effect("update renames and re-tags a session of the org; another org's session is NotFound", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const threads = yield* Threads
        const orgId = yield* newOrg
        const session = yield* sessions.create(orgId, { title: "old", tags: ["a"] })
        const renamed = yield* threads.update(orgId, session.id, { title: "new" })
        assert.deepInclude(renamed, { id: session.id, title: "new" })
        assert.deepStrictEqual(renamed.tags, ["a"], "tags untouched when absent")
        const tagged = yield* threads.update(orgId, session.id, { tags: ["b", "c", "b"] })
        assert.deepStrictEqual([tagged.title, tagged.tags], ["new", ["b", "c"]])
        assert.strictEqual((yield* sessions.get(orgId, session.id)).title, "new")
        assert.deepStrictEqual(yield* threads.tags(orgId), [{ tag: "b", count: 1 }, { tag: "c", count: 1 }])
        const foreign = yield* Effect.flip(threads.update(yield* newOrg, session.id, { title: "stolen" }))
        assert.instanceOf(foreign, NotFound)
        assert.strictEqual((yield* sessions.get(orgId, session.id)).title, "new")
      })))
  })
