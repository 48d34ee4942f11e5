import { Quotas, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { newSession } from "./ControlPlaneFixtures.ts"

/** Org quotas at prompt admission, in the admitting transaction: prompts per hour and queued commands. */
export const promptQuotaContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`SessionStore prompt quotas: ${harness.name}`, () => {
    it.effect("the prompt past the hourly quota is refused with its quota and wait, nothing queued; replays and other orgs pass", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const quota = { promptsPerHour: 3, queuedCommands: 100 }
        const session = yield* newSession()
        for (let i = 0; i < 3; i++) {
          yield* sessions.prompt(session.orgId, session.sessionId, { text: `p${i}`, idempotencyKey: `k${i}`, quota })
        }
        const refused = yield* Effect.flip(sessions.prompt(session.orgId, session.sessionId, { text: "one too many", quota }))
        assert.strictEqual(refused._tag, "RateLimited")
        if (refused._tag !== "RateLimited") return
        assert.deepStrictEqual(refused.details, { quota: "prompts_per_hour", limit: 3 })
        assert.isAbove(refused.retryAfterMs, 0)
        assert.isAtMost(refused.retryAfterMs, 3_600_000, "at most until the hour's window ends")
        const view = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual(view.messages.map((m) => m.text), ["p0", "p1", "p2"], "the refused prompt left no trace")

        const replay = yield* sessions.prompt(session.orgId, session.sessionId, { text: "p1", idempotencyKey: "k1", quota })
        assert.isFalse(replay.created, "a retried request gets its command back, not a 429")
        const other = yield* newSession()
        assert.isTrue((yield* sessions.prompt(other.orgId, other.sessionId, { text: "other org", quota })).created)
        assert.isTrue((yield* sessions.prompt(session.orgId, session.sessionId, { text: "internal, unquoted" })).created)
      })))

    it.effect("queued commands: at the limit of pending commands a prompt is refused until the queue drains", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const quota = { promptsPerHour: 100, queuedCommands: 2 }
        const first = yield* newSession()
        const second = yield* newSession(first.orgId)
        yield* sessions.prompt(first.orgId, first.sessionId, { text: "a", quota })
        yield* sessions.prompt(first.orgId, first.sessionId, { text: "b", quota })
        const refused = yield* Effect.flip(sessions.prompt(second.orgId, second.sessionId, { text: "c", quota }))
        assert.strictEqual(refused._tag, "RateLimited")
        if (refused._tag === "RateLimited") assert.deepStrictEqual(refused.details, { quota: "queued_commands", limit: 2 })
        // Aborting the first session cancels its pending prompts: room again (the abort command itself is pending).
        yield* sessions.abort(first.orgId, first.sessionId)
        assert.isTrue((yield* sessions.prompt(second.orgId, second.sessionId, { text: "c", quota })).created)
      })))

    it.effect("concurrent prompts of one org never queue past the limit, and refused ones use no hourly quota", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const first = yield* newSession()
        const others = [yield* newSession(first.orgId), yield* newSession(first.orgId)]
        const all = [first, ...others]
        // The hour's window row exists before the burst (the first prompt of an hour creates it).
        yield* sessions.prompt(first.orgId, first.sessionId, { text: "opening", quota: { promptsPerHour: 100, queuedCommands: 5 } })
        const quota = { promptsPerHour: 100, queuedCommands: 5 }
        const results = yield* Effect.all(
          Array.from({ length: 16 }, (_, i) =>
            Effect.result(sessions.prompt(first.orgId, all[i % all.length]!.sessionId, { text: `burst ${i}`, quota }))),
          { concurrency: "unbounded" }
        )
        const created = results.filter((r) => r._tag === "Success").length
        assert.strictEqual(created, 4, "the opening prompt + 4 = the 5 queued commands allowed")
        for (const r of results) {
          if (r._tag === "Failure") {
            assert.strictEqual(r.failure._tag, "RateLimited")
            if (r.failure._tag === "RateLimited") assert.deepStrictEqual(r.failure.details, { quota: "queued_commands", limit: 5 })
          }
        }
        const texts = (yield* Effect.forEach(all, (s) => sessions.view(s.orgId, s.sessionId))).flatMap((v) => v.messages.map((m) => m.text))
        assert.strictEqual(texts.length, 5)
        // Five admitted so far; the hourly limit of 7 leaves exactly two more once the queue has room.
        yield* sessions.abort(first.orgId, first.sessionId)
        yield* sessions.abort(others[0]!.orgId, others[0]!.sessionId)
        yield* sessions.abort(others[1]!.orgId, others[1]!.sessionId)
        const fresh = yield* newSession(first.orgId)
        const hourly = { promptsPerHour: 7, queuedCommands: 100 }
        assert.isTrue((yield* sessions.prompt(fresh.orgId, fresh.sessionId, { text: "6th", quota: hourly })).created)
        assert.isTrue((yield* sessions.prompt(fresh.orgId, fresh.sessionId, { text: "7th", quota: hourly })).created)
        const over = yield* Effect.flip(sessions.prompt(fresh.orgId, fresh.sessionId, { text: "8th", quota: hourly }))
        assert.strictEqual(over._tag, "RateLimited")
        if (over._tag === "RateLimited") assert.deepStrictEqual(over.details, { quota: "prompts_per_hour", limit: 7 })
      })))

    it.effect("concurrent sessions: a prompt that would start one more working session is refused; more prompts for a working one pass", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const quota = { promptsPerHour: 100, queuedCommands: 100, concurrentSessions: 2 }
        const first = yield* newSession()
        const second = yield* newSession(first.orgId)
        const third = yield* newSession(first.orgId)
        yield* sessions.prompt(first.orgId, first.sessionId, { text: "a", quota })
        yield* sessions.prompt(second.orgId, second.sessionId, { text: "b", quota })
        assert.isTrue((yield* sessions.prompt(first.orgId, first.sessionId, { text: "a again", quota })).created, "a working session takes more")
        const refused = yield* Effect.flip(sessions.prompt(third.orgId, third.sessionId, { text: "c", quota }))
        assert.strictEqual(refused._tag, "RateLimited")
        if (refused._tag === "RateLimited") {
          assert.deepStrictEqual(refused.details, { quota: "concurrent_sessions", limit: 2 })
          assert.isAbove(refused.retryAfterMs, 0)
        }
        const other = yield* newSession()
        assert.isTrue((yield* sessions.prompt(other.orgId, other.sessionId, { text: "other org", quota })).created)
        // The second session's work ends (aborted): the third may start.
        yield* sessions.abort(second.orgId, second.sessionId)
        assert.isTrue((yield* sessions.prompt(third.orgId, third.sessionId, { text: "c", quota })).created)
      })))

    it.effect("the org's overrides apply inside the admission: each lowered or raised limit counts, other orgs keep the defaults", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const quotas = yield* Quotas
        const defaults = { promptsPerHour: 100, queuedCommands: 100, concurrentSessions: 1 }
        const first = yield* newSession()
        const second = yield* newSession(first.orgId)
        const refusal = (session: { readonly orgId: string; readonly sessionId: string }) =>
          Effect.map(Effect.flip(sessions.prompt(session.orgId, session.sessionId, { text: "refused", quota: defaults })), (e) =>
            e._tag === "RateLimited" ? e.details : e._tag)
        assert.isTrue((yield* sessions.prompt(first.orgId, first.sessionId, { text: "a", quota: defaults })).created)
        assert.deepStrictEqual(yield* refusal(second), { quota: "concurrent_sessions", limit: 1 })
        yield* quotas.setOverride(first.orgId, "concurrent_sessions", 2)
        assert.isTrue((yield* sessions.prompt(second.orgId, second.sessionId, { text: "b", quota: defaults })).created, "raised")
        yield* quotas.setOverride(first.orgId, "queued_commands", 2)
        assert.deepStrictEqual(yield* refusal(first), { quota: "queued_commands", limit: 2 })
        yield* quotas.setOverride(first.orgId, "queued_commands", null)
        yield* quotas.setOverride(first.orgId, "prompts_per_hour", 2)
        assert.deepStrictEqual(yield* refusal(first), { quota: "prompts_per_hour", limit: 2 })
        yield* quotas.setOverride(first.orgId, "prompts_per_hour", 3)
        assert.isTrue((yield* sessions.prompt(first.orgId, first.sessionId, { text: "c", quota: defaults })).created)
        const view = yield* sessions.view(first.orgId, first.sessionId)
        assert.deepStrictEqual(view.messages.map((m) => m.text), ["a", "c"], "refused prompts left no trace")
        const other = yield* newSession()
        const otherSecond = yield* newSession(other.orgId)
        assert.isTrue((yield* sessions.prompt(other.orgId, other.sessionId, { text: "x", quota: defaults })).created)
        assert.deepStrictEqual(yield* refusal(otherSecond), { quota: "concurrent_sessions", limit: 1 }, "another org: the defaults")
      })))
  })
