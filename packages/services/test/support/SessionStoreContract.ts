import { Conflict } from "@cowork/domain"
import { CommandQueue, EventLog, QueueControls, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, newOrg, newSession, prompt } from "./ControlPlaneFixtures.ts"

/** The tenant side of sessions: defaults, org scoping, idempotent prompts, abort, and the keyset list. */
export const sessionStoreContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`SessionStore contract: ${harness.name}`, () => {
    it.effect("create gives an idle session with its created event; another org's session is NotFound everywhere", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const orgId = yield* newOrg
        const created = yield* sessions.create(orgId, {})
        assert.deepInclude(created, { orgId, title: "Untitled session", profileName: "default", status: "idle", lastSequence: 1 })
        const named = yield* sessions.create(orgId, { title: "Named", profileName: "research" })
        assert.deepInclude(named, { title: "Named", profileName: "research" })
        assert.deepStrictEqual(yield* sessions.get(orgId, created.id), created)
        const other = yield* newOrg
        const tags = yield* Effect.all([
          Effect.flip(sessions.get(other, created.id)),
          Effect.flip(sessions.view(other, created.id)),
          Effect.flip(sessions.prompt(other, created.id, { text: "x" })),
          Effect.flip(sessions.abort(other, created.id)),
          Effect.flip(sessions.get(orgId, "ses_unknown"))
        ])
        assert.deepStrictEqual(tags.map((e) => e._tag), Array(5).fill("NotFound"))
      })))

    it.effect("a prompt queues once per idempotency key (another text under the key is a Conflict) and shows as the user's message", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const session = yield* newSession()
        const first = yield* sessions.prompt(session.orgId, session.sessionId, { text: "hello", idempotencyKey: "k1" })
        const again = yield* sessions.prompt(session.orgId, session.sessionId, { text: "hello", idempotencyKey: "k1" })
        assert.deepStrictEqual([first.created, again.created, again.commandId], [true, false, first.commandId])
        const reused = yield* Effect.flip(sessions.prompt(session.orgId, session.sessionId, { text: "something else", idempotencyKey: "k1" }))
        assert.instanceOf(reused, Conflict, "the same key with a different text is refused")
        assert.deepStrictEqual(reused.details, { field: "idempotencyKey", idempotencyKey: "k1" })
        const other = yield* sessions.prompt(session.orgId, session.sessionId, { text: "hello" })
        assert.notStrictEqual(other.commandId, first.commandId)
        const view = yield* sessions.view(session.orgId, session.sessionId)
        assert.strictEqual(view.status, "queued")
        assert.deepStrictEqual(view.messages.map((m) => [m.role, m.text, m.messageId]), [
          ["user", "hello", first.commandId], ["user", "hello", other.commandId]
        ])
        assert.strictEqual(view.projectedSequence, 3)
      })))

    it.effect("abort cancels pending prompts (a `command.cancelled` event each), queues one abort command (idempotent), and refuses later prompts", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const session = yield* newSession()
        const one = yield* prompt(session, "one")
        const two = yield* prompt(session, "two")
        const aborted = yield* sessions.abort(session.orgId, session.sessionId)
        const again = yield* sessions.abort(session.orgId, session.sessionId)
        assert.deepStrictEqual([aborted.created, again.created, again.commandId], [true, false, aborted.commandId])
        // A client waiting on a cancelled prompt learns it from the log, once (the repeated abort cancels nothing).
        const events = yield* (yield* EventLog).read(session.sessionId, 0, 100)
        assert.deepStrictEqual(
          events.filter((event) => event.type === "command.cancelled").map((event) => [event.payload, event.sequence]),
          [
            [{ commandId: one, kind: "prompt", reason: "session aborted", abortCommandId: aborted.commandId }, 4],
            [{ commandId: two, kind: "prompt", reason: "session aborted", abortCommandId: aborted.commandId }, 5]
          ]
        )
        assert.strictEqual(events.length, 5)
        assert.strictEqual((yield* Effect.flip(sessions.prompt(session.orgId, session.sessionId, { text: "late" })))._tag, "Conflict")
        const lease = yield* claimOne("w1", session.sessionId)
        const next = Option.getOrThrow(yield* (yield* CommandQueue).next(lease))
        assert.deepStrictEqual([next.id, next.kind], [aborted.commandId, "abort"], "the cancelled prompt never runs")
      })))

    it.effect("the view holds the newest messages of a page, oldest first, and pages back to the first with no gap or repeat", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const session = yield* newSession()
        const texts = Array.from({ length: 7 }, (_, i) => `m${i + 1}`)
        for (const text of texts) yield* prompt(session, text)
        const whole = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual([whole.messages.map((m) => m.text), whole.nextCursor], [texts, null], "under the default: all, no cursor")
        assert.strictEqual(whole.projectedSequence, 8)
        const pages: Array<ReadonlyArray<string>> = []
        let cursor: string | undefined
        do {
          const page = yield* sessions.view(session.orgId, session.sessionId, { limit: 3, cursor })
          assert.strictEqual(page.projectedSequence, 8, "the resume cursor is the log's, whatever page of messages")
          assert.strictEqual(page.status, "queued")
          pages.push(page.messages.map((m) => m.text))
          cursor = page.nextCursor ?? undefined
        } while (cursor !== undefined)
        assert.deepStrictEqual(pages, [["m5", "m6", "m7"], ["m2", "m3", "m4"], ["m1"]])
        const exact = yield* sessions.view(session.orgId, session.sessionId, { limit: 7 })
        assert.deepStrictEqual([exact.messages.length, exact.nextCursor], [7, null], "a page that ends at the first message has no cursor")
        const first = yield* sessions.view(session.orgId, session.sessionId, { limit: 6 })
        assert.deepStrictEqual((yield* sessions.view(session.orgId, session.sessionId, { limit: 6, cursor: first.nextCursor! })).messages.map((m) => m.text), ["m1"])
        assert.strictEqual((yield* Effect.flip(sessions.view(yield* newOrg, session.sessionId, { limit: 3, cursor: first.nextCursor! })))._tag, "NotFound")
      })))

    it.effect("list filters by status, profile and title, newest first, in keyset pages without gaps or repeats", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const orgId = yield* newOrg
        const made: Array<string> = []
        for (const title of ["Alpha report", "beta notes", "Gamma REPORT", "delta", "epsilon report"]) {
          made.push((yield* sessions.create(orgId, { title, profileName: title.startsWith("d") ? "other" : "default" })).id)
        }
        yield* prompt({ orgId, sessionId: made[0]! })
        yield* sessions.create(yield* newOrg, { title: "another org's report" })
        const seen: Array<string> = []
        let cursor: string | undefined
        do {
          const page = yield* sessions.list(orgId, { limit: 2, cursor })
          assert.strictEqual(page.totalEstimate, 5)
          seen.push(...page.sessions.map((s) => s.id))
          cursor = page.nextCursor ?? undefined
        } while (cursor !== undefined)
        assert.sameMembers(seen, made)
        assert.strictEqual(new Set(seen).size, 5)
        const reports = yield* sessions.list(orgId, { limit: 10, q: "report" })
        assert.sameMembers(reports.sessions.map((s) => s.title), ["Alpha report", "Gamma REPORT", "epsilon report"])
        assert.deepStrictEqual((yield* sessions.list(orgId, { limit: 10, status: "queued" })).sessions.map((s) => s.id), [made[0]])
        assert.deepStrictEqual((yield* sessions.list(orgId, { limit: 10, profileName: "other" })).sessions.map((s) => s.title), ["delta"])
        assert.deepStrictEqual((yield* sessions.list(orgId, { limit: 10, q: "%" })).sessions, [], "wildcards are literal")
      })))

    it.effect("answers: queued only while their ask is pending (409 naming the field otherwise), one per ask, taken ahead of prompts, cleared with the turn", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const log = yield* EventLog
        const queue = yield* CommandQueue
        const session = yield* newSession()
        const turn = yield* prompt(session, "ask")
        const respond = (response: "once" | "always" | "reject", permissionId = "per_1") =>
          sessions.answer(session.orgId, session.sessionId, { kind: "permission_respond", permissionId, response })
        const early = yield* Effect.flip(respond("once"))
        assert.instanceOf(early, Conflict, "nothing asked yet")
        assert.deepInclude(early.details, { field: "permissionId" })

        const lease = yield* claimOne("w1", session.sessionId)
        const running = Option.getOrThrow(yield* queue.next(lease))
        assert.strictEqual(running.id, turn)
        yield* log.append(lease, [
          { type: "permission.requested", payload: { permissionId: "per_1", permission: "edit", patterns: ["a.txt"], commandId: turn }, commandId: turn, attempt: 1 },
          { type: "question.asked", payload: { requestId: "que_1", questions: [{ question: "ok?" }], commandId: turn }, commandId: turn, attempt: 1 }
        ])
        const view = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual(view.pendingPermissions.map((p) => [p.permissionId, p.permission, p.patterns, p.commandId]), [["per_1", "edit", ["a.txt"], turn]])
        assert.deepStrictEqual(view.pendingQuestions.map((q) => [q.requestId, q.questions]), [["que_1", [{ question: "ok?" }]]])

        const queuedPrompt = yield* prompt(session, "later")
        const answered = yield* respond("once")
        const again = yield* respond("once")
        assert.deepStrictEqual([answered.created, again.created, again.commandId], [true, false, answered.commandId])
        const changed = yield* Effect.flip(respond("reject"))
        assert.instanceOf(changed, Conflict, "another answer to the same ask")
        const reply = yield* sessions.answer(session.orgId, session.sessionId, { kind: "question_reply", requestId: "que_1", answers: [["yes"]] })
        assert.strictEqual((yield* Effect.flip(sessions.answer(yield* newOrg, session.sessionId, { kind: "question_reject", requestId: "que_1" })))._tag, "NotFound")

        // The turn takes the answers ahead of the prompt queued before them, in their order.
        const first = Option.getOrThrow(yield* queue.nextAnswer(lease))
        const second = Option.getOrThrow(yield* queue.nextAnswer(lease))
        assert.deepStrictEqual([first.id, first.kind, first.payload], [answered.commandId, "permission_respond", { permissionId: "per_1", response: "once" }])
        assert.deepStrictEqual([second.id, second.kind, second.payload], [reply.commandId, "question_reply", { requestId: "que_1", answers: [["yes"]] }])
        assert.isTrue(Option.isNone(yield* queue.nextAnswer(lease)))
        yield* log.append(lease, [
          { type: "permission.replied", payload: { permissionId: "per_1", response: "once" }, commandId: answered.commandId, attempt: 1 }
        ], { commandId: answered.commandId, outcome: "acked" })
        const afterReply = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual([afterReply.pendingPermissions.length, afterReply.pendingQuestions.length], [0, 1])
        // The turn ends before the question's answer is delivered: its asks are no longer pending.
        yield* log.append(lease, [{ type: "session.idle", payload: { commandId: turn, outcome: "acked" }, commandId: turn, attempt: 1 }], {
          commandId: turn,
          outcome: "acked"
        })
        const closed = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual([closed.pendingPermissions, closed.pendingQuestions], [[], []])
        const late = yield* Effect.flip(sessions.answer(session.orgId, session.sessionId, { kind: "question_reject", requestId: "que_1" }))
        assert.instanceOf(late, Conflict)
        assert.deepInclude((late as Conflict).details, { field: "requestId" })
        assert.strictEqual(Option.getOrThrow(yield* queue.next(lease)).id, queuedPrompt)
      })))
    it.effect("a refused answer says why: answered (by whom, where, when; the same answer from someone else too), session aborted, not pending", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const log = yield* EventLog
        const queue = yield* CommandQueue
        const session = yield* newSession()
        const turn = yield* prompt(session, "ask")
        const lease = yield* claimOne("w1", session.sessionId)
        assert.strictEqual(Option.getOrThrow(yield* queue.next(lease)).id, turn)
        yield* log.append(lease, [
          { type: "permission.requested", payload: { permissionId: "per_w", permission: "edit", patterns: [], commandId: turn }, commandId: turn, attempt: 1 },
          { type: "question.asked", payload: { requestId: "que_w", questions: [{ question: "ok?" }], commandId: turn }, commandId: turn, attempt: 1 }
        ])
        const respond = (response: "once" | "reject", answeredBy: string, answeredVia: string) =>
          sessions.answer(session.orgId, session.sessionId, {
            kind: "permission_respond", permissionId: "per_w", response, answeredBy, answeredByName: `@${answeredBy.toLowerCase()}`, answeredVia
          })
        const first = yield* respond("once", "U42", "slack")
        // The same answerer again (a retried request): the same command.
        assert.deepStrictEqual(yield* respond("once", "U42", "slack"), { commandId: first.commandId, created: false })
        const refusals = [
          yield* Effect.flip(respond("once", "U77", "slack")),
          yield* Effect.flip(respond("once", "U42", "telegram")),
          yield* Effect.flip(respond("reject", "U42", "slack"))
        ]
        // When: the time the first answer was queued (the store's clock), the same in every refusal.
        const answeredAt = String(((refusals[0] as Conflict).details ?? {}).answeredAt)
        assert.match(answeredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
        for (const refused of refusals) {
          assert.instanceOf(refused, Conflict)
          assert.deepInclude((refused as Conflict).details, {
            field: "permissionId", permissionId: "per_w", reason: "answered", answeredBy: "U42", answeredByName: "@u42", answeredVia: "slack", answeredAt
          })
          assert.include((refused as Conflict).message, `by U42 at ${answeredAt}`)
        }
        // What an answer to the ask finds, whatever it says; another org's session is NotFound.
        const existing = yield* sessions.existingAnswer(session.orgId, session.sessionId, { kind: "permission_respond", permissionId: "per_w", response: "reject" })
        assert.deepInclude(existing, { commandId: first.commandId, kind: "permission_respond" })
        assert.deepInclude(existing!.payload, { response: "once", answeredBy: "U42", answeredVia: "slack" })
        assert.isUndefined(yield* sessions.existingAnswer(session.orgId, session.sessionId, { kind: "question_reject", requestId: "que_w" }))
        const foreign = yield* Effect.flip(sessions.existingAnswer(yield* newOrg, session.sessionId, { kind: "question_reject", requestId: "que_w" }))
        assert.strictEqual(foreign._tag, "NotFound")

        const notAsked = yield* Effect.flip(sessions.answer(session.orgId, session.sessionId, { kind: "question_reject", requestId: "que_never" }))
        assert.deepInclude((notAsked as Conflict).details, { field: "requestId", requestId: "que_never", reason: "not_pending" })
        // Aborted: the unanswered question is refused as such; so is the permission, whose queued answer the abort
        // cancelled (it never reached the turn: it is not named as the ask's answer).
        yield* sessions.abort(session.orgId, session.sessionId)
        const stopped = yield* Effect.flip(sessions.answer(session.orgId, session.sessionId, { kind: "question_reject", requestId: "que_w" }))
        assert.deepInclude((stopped as Conflict).details, { field: "requestId", requestId: "que_w", reason: "session_aborted" })
        assert.deepInclude(((yield* Effect.flip(respond("reject", "U77", "slack"))) as Conflict).details, { reason: "session_aborted" })
        assert.isUndefined(yield* sessions.existingAnswer(session.orgId, session.sessionId, { kind: "permission_respond", permissionId: "per_w", response: "once" }))
      })))

    it.effect("a dead-lettered answer gives its ask back: still pending, it takes a new answer (from anyone), never refused as answered by the lost one", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const log = yield* EventLog
        const queue = yield* CommandQueue
        const session = yield* newSession()
        const turn = yield* prompt(session, "ask")
        const lease = yield* claimOne("w1", session.sessionId)
        assert.strictEqual(Option.getOrThrow(yield* queue.next(lease)).id, turn)
        yield* log.append(lease, [
          { type: "permission.requested", payload: { permissionId: "per_d", permission: "edit", patterns: [], commandId: turn }, commandId: turn, attempt: 1 }
        ])
        const respond = (response: "once" | "reject", answeredBy: string) =>
          sessions.answer(session.orgId, session.sessionId, { kind: "permission_respond", permissionId: "per_d", response, answeredBy, answeredVia: "web" })
        const lost = yield* respond("once", "alice@example.com")
        yield* (yield* QueueControls).deadLetter(session.orgId, lost.commandId, "the worker is stuck")
        // The log says the answer will not run, then asks again (the ask's payload, why its answer was lost).
        const events = yield* log.read(session.sessionId, 0, 100)
        assert.deepStrictEqual(events.slice(-2).map((event) => [event.type, event.payload]), [
          ["command.dead_lettered", { commandId: lost.commandId, kind: "permission_respond", reason: "the worker is stuck", cause: "operator" }],
          ["permission.requested", {
            permissionId: "per_d",
            permission: "edit",
            patterns: [],
            commandId: turn,
            answerLost: { commandId: lost.commandId, reason: "the worker is stuck" }
          }]
        ])
        const view = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual(view.pendingPermissions.map((p) => [p.permissionId, p.commandId, p.sequence]), [["per_d", turn, events.at(-1)!.sequence]], "the ask is still pending")
        assert.isUndefined(yield* sessions.existingAnswer(session.orgId, session.sessionId, { kind: "permission_respond", permissionId: "per_d", response: "once" }))

        // The same answer again (alice retries) is a new command, not the lost one; then it is the ask's answer.
        const retried = yield* respond("once", "alice@example.com")
        assert.isTrue(retried.created)
        assert.notStrictEqual(retried.commandId, lost.commandId)
        assert.deepStrictEqual(yield* respond("once", "alice@example.com"), { commandId: retried.commandId, created: false })
        const refused = yield* Effect.flip(respond("reject", "bob@example.com"))
        assert.deepInclude((refused as Conflict).details, { reason: "answered", answeredBy: "alice@example.com" })
        const delivered = Option.getOrThrow(yield* queue.nextAnswer(lease))
        assert.strictEqual(delivered.id, retried.commandId, "the turn gets the new answer, never the dead one")
        assert.isTrue(Option.isNone(yield* queue.nextAnswer(lease)))
      })))
  })
