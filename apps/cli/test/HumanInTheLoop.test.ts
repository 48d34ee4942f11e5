import { ScriptedRuntime } from "@cowork/runtime"
import { MemoryDatabase, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import { Browser } from "../../web/test/support/Browser.ts"
import { eventually } from "../../../test/support/Eventually.ts"
import { memoryStack, orgClient, startWorker } from "../../../test/support/MemoryStack.ts"
import { connect, eventData } from "../../../test/support/SseClient.ts"

/**
 * Human in the loop end to end on the memory stack (web + worker roles, the scripted runtime): a turn that asks
 * waits, the view and the SSE stream show the ask, the answer route queues a command the worker hands to the waiting
 * turn, and the turn continues.
 */
const setup = Effect.gen(function*() {
  const { token, url, api } = yield* orgClient(`hitl-${globalThis.crypto.randomUUID().slice(0, 8)}`)
  const post = (path: string, body: unknown) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      return { status: response.status, body: await response.json() as any }
    })
  return { token, url, api, post }
})

const commandStatus = (commandId: string) =>
  Effect.map(Effect.service(MemoryDatabase), (db) => db.commands.find((c) => c.id === commandId)?.status)

it.layer(memoryStack("hitl"), { timeout: 60_000 })("human in the loop (memory stack, scripted runtime)", (it) => {
  it.effect("a permission request waits for its answer: view and SSE show it, permission-respond lets the turn continue, a second answer is 409", () =>
    Effect.gen(function*() {
      const { token, url, api, post } = yield* setup
      const { session } = yield* api.sessions.create({ payload: { title: "hitl" } })
      const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      const worker = yield* startWorker("worker-hitl-1")
      const { commandId } = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "edit it [[permission]]" } })

      const asked = yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "permission.requested"), 15_000)
      const request = eventData(asked).find((e) => e.type === "permission.requested")!
      const permissionId = `per_${commandId}_1`
      assert.deepInclude(request.payload as object, { permissionId, permission: "edit", commandId })

      const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.strictEqual(view.status, "running", "the turn waits, still running")
      assert.deepStrictEqual(view.pendingPermissions.map((p) => [p.permissionId, p.permission, p.commandId]), [[permissionId, "edit", commandId]])
      assert.deepStrictEqual(view.pendingQuestions, [])

      const badField = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId, response: "maybe" })
      assert.strictEqual(badField.status, 400)
      assert.include(JSON.stringify(badField.body.error), "response")
      const unknown = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId: "per_nope", response: "once" })
      assert.strictEqual(unknown.status, 409, "an ask that is not pending")
      assert.deepInclude(unknown.body.error.details, { field: "permissionId", reason: "not_pending" })

      const answered = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId, response: "once" })
      assert.strictEqual(answered.status, 202)
      const frames = yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "session.idle"), 15_000)
      const events = eventData(frames)
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), "contiguous, no gap, no duplicate")
      const types = events.map((e) => e.type).filter((t) => t !== "assistant.message")
      assert.deepStrictEqual(types, [
        "session.created", "prompt.submitted", "session.status", "permission.requested", "permission.replied", "tool.call", "session.idle"
      ])
      const replied = events.find((e) => e.type === "permission.replied")!
      assert.deepInclude(replied.payload as object, { permissionId, response: "once", commandId: answered.body.commandId })
      const idle = events.find((e) => e.type === "session.idle")!
      assert.deepInclude(idle.payload as object, { commandId, outcome: "acked" })

      const after = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.deepStrictEqual(after.pendingPermissions, [], "answered: no longer pending")
      assert.strictEqual(after.messages.at(-1)!.text, "echo: edit it [permission once]")
      assert.strictEqual(yield* commandStatus(answered.body.commandId), "acked")
      assert.strictEqual(yield* commandStatus(commandId), "acked")

      // The same answer again is the same command; another answer (or any answer now) is refused.
      const again = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId, response: "once" })
      assert.deepStrictEqual([again.status, again.body.commandId], [202, answered.body.commandId])
      const other = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId, response: "reject" })
      assert.strictEqual(other.status, 409)
      // The 409 names who answered (this token's id, never its secret), where and when.
      const tokenId = /^occ_([A-Za-z0-9]+)_/.exec(token)![1]!
      assert.deepInclude(other.body.error.details, { field: "permissionId", permissionId, reason: "answered", answeredBy: tokenId, answeredVia: "api" })
      assert.match(other.body.error.details.answeredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.include(other.body.error.message, `by ${tokenId}`)
      assert.notInclude(JSON.stringify(other.body), token.slice(token.lastIndexOf("_") + 1))
      // Someone else giving the same answer is told it was answered, not handed the first command as theirs.
      const tokens = yield* Tokens
      const secondToken = Redacted.value((yield* tokens.issue({ orgId: session.orgId, name: "teammate", scopes: ["web"] })).token)
      const teammate = yield* Effect.promise(() =>
        fetch(`${url}/api/sessions/${session.id}/permission-respond`, {
          method: "POST",
          headers: { authorization: `Bearer ${secondToken}`, "content-type": "application/json" },
          body: JSON.stringify({ permissionId, response: "once" })
        }).then(async (r) => ({ status: r.status, body: await r.json() as any }))
      )
      assert.strictEqual(teammate.status, 409, JSON.stringify(teammate.body))
      assert.deepInclude(teammate.body.error.details, { reason: "answered", answeredBy: tokenId, answeredVia: "api" })

      // Another org's session is a 404.
      const strangerOrg = yield* tokens.createOrg("other org")
      const stranger = yield* tokens.issue({ orgId: strangerOrg.orgId, name: "stranger", scopes: ["web"] })
      const foreign = yield* Effect.promise(() =>
        fetch(`${url}/api/sessions/${session.id}/permission-respond`, {
          method: "POST",
          headers: { authorization: `Bearer ${Redacted.value(stranger.token)}`, "content-type": "application/json" },
          body: JSON.stringify({ permissionId, response: "once" })
        }).then((r) => r.status)
      )
      assert.strictEqual(foreign, 404)
      yield* Scope.close(worker, Exit.void)
      yield* stream.close
    }))

  it.effect("an answer from a browser session is named to whoever answers next (its account, in the web app); the same browser again is the same command", () =>
    Effect.gen(function*() {
      const { token, url, api, post } = yield* setup
      const { session } = yield* api.sessions.create({ payload: { title: "hitl-web" } })
      const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      const owner = Redacted.value((yield* (yield* Tokens).issue({ orgId: session.orgId, name: "owner", scopes: ["web", "admin"] })).token)
      const browser = new Browser()
      const signedIn = yield* Effect.promise(() => browser.request("POST", `${url}/auth/token-login`, { json: { token: owner }, headers: { origin: url } }))
      assert.strictEqual(signedIn.status, 200, signedIn.text)
      // The server's clock is the test clock here (its cookie "expires" in 1970, which the jar drops): keep it by hand.
      const [name, value] = browser.setCookies.at(-1)!.split(";")[0]!.split("=") as [string, string]
      browser.setCookie(new URL(url).host, name, value)
      const fromBrowser = (permissionId: string, response: string) =>
        Effect.promise(() =>
          browser.request("POST", `${url}/api/sessions/${session.id}/permission-respond`, {
            json: { permissionId, response },
            headers: { origin: url, "x-csrf-token": signedIn.json.csrfToken }
          }))
      const worker = yield* startWorker("worker-hitl-web")
      const { commandId } = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "edit it [[permission]]" } })
      const permissionId = `per_${commandId}_1`
      yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "permission.requested"), 15_000)

      const answered = yield* fromBrowser(permissionId, "once")
      assert.strictEqual(answered.status, 202, answered.text)
      const again = yield* fromBrowser(permissionId, "once")
      assert.deepStrictEqual([again.status, again.json.commandId], [202, answered.json.commandId], "the same browser again: the same command")
      const late = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId, response: "once" })
      assert.strictEqual(late.status, 409, JSON.stringify(late.body))
      assert.deepInclude(late.body.error.details, { reason: "answered", answeredBy: signedIn.json.accountId, answeredVia: "web" })
      assert.include(late.body.error.message, `already answered by ${signedIn.json.accountId} at `)
      yield* Scope.close(worker, Exit.void)
      yield* stream.close
    }))

  it.effect("a question is answered with question-reply or declined with question-reject; a rejected permission ends the tool call in error", () =>
    Effect.gen(function*() {
      const { token, url, api, post } = yield* setup
      const { session } = yield* api.sessions.create({ payload: { title: "questions" } })
      const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      const worker = yield* startWorker("worker-hitl-2")
      const idles = () => eventData(stream.frames()).filter((e) => e.type === "session.idle").length

      const first = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "ask me [[question]]" } })
      yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "question.asked"), 15_000)
      const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.deepStrictEqual(view.pendingQuestions.map((q) => q.requestId), [`que_${first.commandId}_1`])
      assert.deepStrictEqual(view.pendingQuestions[0]!.questions, ScriptedRuntime.SCRIPTED_QUESTIONS)
      const tooMany = yield* post(`/api/sessions/${session.id}/question-reply`, { requestId: `que_${first.commandId}_1`, answers: "yes" })
      assert.strictEqual(tooMany.status, 400)
      // One list of answers per question asked: a list for a question that was not asked is refused, naming the field.
      const wrongCount = yield* post(`/api/sessions/${session.id}/question-reply`, { requestId: `que_${first.commandId}_1`, answers: [["yes"], ["no"]] })
      assert.deepStrictEqual([wrongCount.status, wrongCount.body.error.code, wrongCount.body.error.details?.field], [400, "bad_request", "answers"])
      assert.strictEqual((yield* post(`/api/sessions/${session.id}/question-reply`, { requestId: `que_${first.commandId}_1`, answers: [["yes"]] })).status, 202)
      yield* stream.waitFor(() => idles() === 1, 15_000)

      const second = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "ask again [[question]]" } })
      yield* stream.waitFor((f) => eventData(f).filter((e) => e.type === "question.asked").length === 2, 15_000)
      assert.strictEqual((yield* post(`/api/sessions/${session.id}/question-reject`, { requestId: `que_${second.commandId}_1` })).status, 202)
      yield* stream.waitFor(() => idles() === 2, 15_000)

      const third = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "write [[permission]]" } })
      yield* stream.waitFor((f) => eventData(f).filter((e) => e.type === "permission.requested").length === 1, 15_000)
      assert.strictEqual(
        (yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId: `per_${third.commandId}_1`, response: "reject" })).status,
        202
      )
      yield* stream.waitFor(() => idles() === 3, 15_000)

      const events = eventData(stream.frames())
      assert.deepStrictEqual(events.filter((e) => e.type === "question.replied").map((e) => (e.payload as any).answers), [[["yes"]]])
      assert.strictEqual(events.filter((e) => e.type === "question.rejected").length, 1)
      const tool = events.find((e) => e.type === "tool.call")!
      assert.deepInclude(tool.payload as object, { status: "error", commandId: third.commandId })
      const final = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.deepStrictEqual(final.messages.filter((m) => m.role === "assistant").map((m) => m.text), [
        "echo: ask me [answered: yes]",
        "echo: ask again [question rejected]",
        "echo: write [permission rejected]"
      ])
      assert.deepStrictEqual([final.pendingPermissions, final.pendingQuestions], [[], []])
      yield* Scope.close(worker, Exit.void)
      yield* stream.close
    }))

  it.effect("an abort ends a waiting turn and clears its asks; an answer after that is 409", () =>
    Effect.gen(function*() {
      const { token, url, api, post } = yield* setup
      const { session } = yield* api.sessions.create({ payload: { title: "aborted" } })
      const stream = yield* connect(`${url}/api/sessions/${session.id}/events`, { authorization: `Bearer ${token}` })
      const worker = yield* startWorker("worker-hitl-3")
      const { commandId } = yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "wait [[permission]]" } })
      yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "permission.requested"), 15_000)
      yield* api.sessions.abort({ params: { id: session.id } })
      yield* stream.waitFor((f) => eventData(f).some((e) => e.type === "session.aborted"), 15_000)
      const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.deepStrictEqual(view.pendingPermissions, [])
      const late = yield* post(`/api/sessions/${session.id}/permission-respond`, { permissionId: `per_${commandId}_1`, response: "once" })
      assert.strictEqual(late.status, 409)
      yield* eventually(Effect.map(commandStatus(commandId), (s) => s === "cancelled"), "the waiting turn was cancelled")
      yield* Scope.close(worker, Exit.void)
      yield* stream.close
    }))
})
