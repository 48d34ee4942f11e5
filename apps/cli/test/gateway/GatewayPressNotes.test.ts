import { InboundSignatures, pressInProgress, pressUnavailable } from "@cowork/channels"
import { CommandQueue, EventLog, LeaseStore, MemoryDatabase } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Option, Scope } from "effect"
import { FakeSlack } from "../../../../packages/channels/test/support/FakeSlack.ts"
import { FakeTelegram } from "../../../../packages/channels/test/support/FakeTelegram.ts"
import { CloudLayer, createBinding, freePort, http, issueGatewayToken, orgAdmin, startGateway, startWorker } from "./GatewayStack.ts"

/**
 * What a presser is told when a press is not taken, and that an answer reaches its session once whatever replica
 * takes the press: web and worker roles on the memory stack (scripted runtime), gateways in this process against the
 * web role's HTTP API, loopback Telegram and Slack fakes.
 */

const TG_TOKEN = "777002:canary-press-notes-telegram-token"
const TG_HOOK = "canary-press-notes-tg-webhook-secret"
const SLACK_TOKEN = "xoxb-canary-press-notes-slack"
const SLACK_SIGNING = "canary-press-notes-slack-signing"
const env = { PN_TG: TG_TOKEN, PN_TG_HOOK: TG_HOOK, PN_SLACK: SLACK_TOKEN, PN_SLACK_SIGNING: SLACK_SIGNING }
/** How a note says when: `at 2026-12-01 04:12 UTC`. */
const AT = "at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC"

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** The answer commands the session's mailbox holds: kind and who / where / what (the one store of the memory stack). */
const answersOf = (sessionId: string) =>
  Effect.map(Effect.service(MemoryDatabase), (db) =>
    db.commands.filter((c) => c.sessionId === sessionId && c.kind !== "prompt" && c.kind !== "abort").map((c) => {
      const { response, answeredBy, answeredByName, answeredVia } = c.payload
      return [c.kind, {
        response,
        ...(answeredBy === undefined || answeredVia === "api" ? {} : { answeredBy }),
        ...(answeredByName === undefined ? {} : { answeredByName }),
        answeredVia
      }] as const
    }))
const nowSeconds = () => String(Math.floor(Date.now() / 1000))

it.layer(CloudLayer, { timeout: 120_000, excludeTestServices: true })("gateway press notes (memory stack, scripted runtime, provider fakes)", (it) => {
  it.effect("Telegram: a press not taken says why — answered by another user (who, when), by you, through the API; the session stopped", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "6006" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-press-notes-tg")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:PN_TG", webhookSecretRef: "env:PN_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 }
      ], env)
      const update = (body: unknown) => http("POST", `${gateway.url}/webhooks/tg`, undefined, body, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })
      let updateId = 9_000
      const say = (text: string) => update({ update_id: ++updateId, message: { message_id: updateId, chat: { id: 6006 }, from: { id: 9 }, text } })
      const press = (user: number, data: string, messageId: number) =>
        update({ update_id: ++updateId, callback_query: { id: `cb-${updateId}`, from: { id: user, ...(user === 9 ? { username: "pat" } : {}) }, data, message: { message_id: messageId, chat: { id: 6006 }, text: "asked" } } })
      const lastNote = () => telegram.callbackAnswers.at(-1)!.text ?? ""
      const asked = (count: number) =>
        Effect.gen(function*() {
          yield* promise(() => telegram.waitForSends(count, 30_000))
          const sent = telegram.sends[count - 1]!
          assert.deepStrictEqual(sent.buttons.map(([label]) => label), ["Allow once", "Always", "Reject"])
          return { messageId: sent.messageId, once: sent.buttons[0]![1], reject: sent.buttons[2]![1] }
        })

      // User 9 answers; another user pressing the same answer is told who answered and when (not "Answered" as theirs).
      assert.strictEqual((yield* say("edit it [[permission]]")).status, 202)
      const first = yield* asked(1)
      assert.deepStrictEqual((yield* press(9, first.once, first.messageId)).body, { status: "prompted" })
      yield* promise(() => telegram.waitForSends(2, 30_000))
      assert.strictEqual(telegram.sends[1]!.text, "echo: edit it [permission once]")
      const edits = telegram.edits.length
      const other = yield* press(10, first.once, first.messageId)
      assert.deepStrictEqual([other.status, other.body], [200, { status: "refused" }])
      assert.match(lastNote(), new RegExp(`^Already answered by @pat ${AT}\\.$`))
      // The one who answered, pressing another answer.
      assert.deepStrictEqual((yield* press(9, first.reject, first.messageId)).body, { status: "refused" })
      assert.match(lastNote(), new RegExp(`^You already answered this ${AT}\\.$`))
      assert.strictEqual(telegram.edits.length, edits, "a refused press edits nothing")

      // Answered through the API first: the press says where.
      assert.strictEqual((yield* say("again [[permission]]")).status, 202)
      const second = yield* asked(3)
      const routes = yield* http("GET", `${url}/api/channels/bindings/${binding.id}/sessions`, admin)
      const sessionId = routes.body.routes[0].sessionId as string
      const permissionId = second.once.split(":")[1]!
      const byApi = yield* http("POST", `${url}/api/sessions/${sessionId}/permission-respond`, admin, { permissionId, response: "always" })
      assert.strictEqual(byApi.status, 202, JSON.stringify(byApi.body))
      assert.deepStrictEqual((yield* press(9, second.once, second.messageId)).body, { status: "refused" })
      assert.match(lastNote(), new RegExp(`^Already answered through the API ${AT}\\.$`))
      // The gateway's own read of that refusal says where and when, never who (an API token's id, a web user's email).
      const direct = yield* http("POST", `${url}/api/channels/bindings/${binding.id}/answer`, gatewayToken, {
        providerEventId: "direct-answer-1",
        externalThreadId: routes.body.routes[0].externalThreadId,
        externalUserId: "10",
        action: "permission-respond",
        permissionId,
        response: "once"
      })
      assert.strictEqual(direct.status, 409, JSON.stringify(direct.body))
      assert.deepInclude(direct.body.error.details, { reason: "answered", answeredVia: "api" })
      assert.notProperty(direct.body.error.details, "answeredBy")
      assert.match(direct.body.error.message, new RegExp(`already answered through the API at `))
      yield* promise(() => telegram.waitForSends(4, 30_000))
      assert.strictEqual(telegram.sends[3]!.text, "echo: again [permission always]")

      // The session is stopped while its turn waits: the press says so.
      assert.strictEqual((yield* say("third [[permission]]")).status, 202)
      const third = yield* asked(5)
      assert.strictEqual((yield* http("POST", `${url}/api/sessions/${sessionId}/abort`, admin)).status, 202)
      assert.deepStrictEqual((yield* press(9, third.once, third.messageId)).body, { status: "refused" })
      assert.strictEqual(lastNote(), "Not taken: this session was stopped, so the question no longer takes answers.")

      // One answer per ask reached the session: the first user's and the API's; none after the abort.
      assert.deepStrictEqual(yield* answersOf(sessionId), [["permission_respond", { response: "once", answeredBy: "9", answeredByName: "@pat", answeredVia: "telegram" }], [
        "permission_respond",
        { response: "always", answeredVia: "api" }
      ]])
      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("Telegram: a partial pick of a multi-question ask says it was answered already (by whom, when), or that the session stopped, as a full pick does", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "6007" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-press-notes-picks")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:PN_TG", webhookSecretRef: "env:PN_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 }
      ], env)
      const update = (body: unknown) => http("POST", `${gateway.url}/webhooks/tg`, undefined, body, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })
      let updateId = 9_500
      const say = (text: string) => update({ update_id: ++updateId, message: { message_id: updateId, chat: { id: 6007 }, from: { id: 9 }, text } })
      type Rows = ReadonlyArray<ReadonlyArray<readonly [string, string]>>
      /** A press on a message the fake sent, carrying the keyboard it shows (as Telegram does). */
      const press = (user: number, messageId: number, rows: Rows, data: string) =>
        update({
          update_id: ++updateId,
          callback_query: {
            id: `cb-${updateId}`, from: { id: user, ...(user === 9 ? { username: "pat" } : {}) }, data,
            message: { message_id: messageId, chat: { id: 6007 }, text: "asked", reply_markup: { inline_keyboard: rows.map((row) => row.map(([label, d]) => ({ text: label, callback_data: d }))) } }
          }
        })
      const lastNote = () => telegram.callbackAnswers.at(-1)!.text ?? ""
      const asked = (count: number) =>
        Effect.gen(function*() {
          yield* promise(() => telegram.waitForSends(count, 30_000))
          const sent = telegram.sends[count - 1]!
          assert.deepStrictEqual(sent.rows.map((row) => row.map(([label]) => label)), [["1: yes", "1: no"], ["2: red", "2: blue"], ["Reject"]])
          return sent
        })

      // Open: a partial pick notes the selection.
      assert.strictEqual((yield* say("pick [[question:2]]")).status, 202)
      const ask = yield* asked(1)
      const picked = yield* press(9, ask.messageId, ask.rows, ask.rows[0]![1]![1])
      assert.deepStrictEqual(picked.body, { status: "selected" })
      assert.strictEqual(lastNote(), "Noted. 1 more to choose.")
      const marked = telegram.edits.at(-1)!.rows
      // The full pick answers; later partial picks (a stale keyboard) are refused with who answered and when.
      assert.deepStrictEqual((yield* press(9, ask.messageId, marked, marked[1]![1]![1])).body, { status: "prompted" })
      yield* promise(() => telegram.waitForSends(2, 30_000))
      const edits = telegram.edits.length
      const theirs = yield* press(10, ask.messageId, ask.rows, ask.rows[0]![0]![1])
      assert.deepStrictEqual([theirs.status, theirs.body], [200, { status: "refused" }])
      assert.match(lastNote(), new RegExp(`^Already answered by @pat ${AT}\\.$`))
      assert.deepStrictEqual((yield* press(9, ask.messageId, ask.rows, ask.rows[0]![0]![1])).body, { status: "refused" })
      assert.match(lastNote(), new RegExp(`^You already answered this ${AT}\\.$`))
      assert.strictEqual(telegram.edits.length, edits, "a refused pick edits nothing")

      // The session stopped while its question waits: a partial pick says so.
      assert.strictEqual((yield* say("again [[question:2]]")).status, 202)
      const next = yield* asked(3)
      const routes = yield* http("GET", `${url}/api/channels/bindings/${binding.id}/sessions`, admin)
      assert.strictEqual((yield* http("POST", `${url}/api/sessions/${routes.body.routes[0].sessionId}/abort`, admin)).status, 202)
      assert.deepStrictEqual((yield* press(9, next.messageId, next.rows, next.rows[1]![0]![1])).body, { status: "refused" })
      assert.strictEqual(lastNote(), "Not taken: this session was stopped, so the question no longer takes answers.")
      assert.strictEqual(telegram.edits.length, edits)
      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("Slack: a press another replica is taking gets a note and a 200, not a bare 503; the cloud unreachable too; across two replicas a press is answered once", () =>
    Effect.gen(function*() {
      const slack = new FakeSlack(SLACK_TOKEN)
      yield* promise(() => slack.start())
      yield* Effect.addFinalizer(() => promise(() => slack.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "slack", providerId: "slack", externalTarget: "C7" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-press-notes-slack")
      const providers = [
        { id: "slack", kind: "slack", botTokenRef: "env:PN_SLACK", signingSecretRef: "env:PN_SLACK_SIGNING", apiUrl: slack.apiUrl, timeoutMs: 2_000 }
      ]
      const replicaA = yield* startGateway(url, gatewayToken, providers, env)
      const replicaB = yield* startGateway(url, gatewayToken, providers, env)
      const signed = (body: string, ts = nowSeconds()) => ({
        [InboundSignatures.SLACK_TIMESTAMP_HEADER]: ts,
        [InboundSignatures.SLACK_SIGNATURE_HEADER]: InboundSignatures.signSlack(SLACK_SIGNING, ts, body)
      })
      const event = (eventId: string, text: string, ts: string) => {
        const body = JSON.stringify({ type: "event_callback", event_id: eventId, event: { type: "message", channel: "C7", user: "U42", text, ts } })
        return http("POST", `${replicaA.url}/webhooks/slack`, undefined, body, signed(body))
      }
      const interaction = (triggerId: string, post: { ts: string; text: string; threadTs?: string | undefined }, value: string, user = "U42") =>
        `payload=${encodeURIComponent(JSON.stringify({
          type: "block_actions", trigger_id: triggerId, user: { id: user }, channel: { id: "C7" },
          container: { type: "message", channel_id: "C7", message_ts: post.ts, thread_ts: post.threadTs },
          message: { ts: post.ts, thread_ts: post.threadTs, text: post.text },
          actions: [{ action_id: "answer_0", block_id: "cowork_answer", type: "button", value, action_ts: "1700000999.000001" }]
        }))}`
      const press = (gatewayUrl: string, body: string, headers: Record<string, string>) =>
        http("POST", `${gatewayUrl}/webhooks/slack`, undefined, body, { "content-type": "application/x-www-form-urlencoded", ...headers })
      const claimEvent = (providerEventId: string, kind: "callback" | "signature") =>
        Effect.gen(function*() {
          const claimed = yield* http("POST", `${url}/api/channels/provider-events/claim`, gatewayToken, {
            channelBindingId: binding.id, providerEventId, kind, claimTtlMs: 60_000
          })
          assert.strictEqual(claimed.body.status, "claimed", JSON.stringify(claimed.body))
          return () =>
            Effect.map(http("POST", `${url}/api/channels/provider-events/complete`, gatewayToken, {
              channelBindingId: binding.id, providerEventId, claimToken: claimed.body.claimToken, outcome: "released"
            }), (r) => assert.strictEqual(r.status, 200, JSON.stringify(r.body)))
        })

      assert.strictEqual((yield* event("EvN1", "edit it [[permission]]", "1700000700.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(1, 30_000))
      const asked = slack.posts[0]!
      const once = asked.buttons[0]![1]
      const note = (user: string, text: string) => ({ channel: "C7", user, text, threadTs: "1700000700.000100" })

      // The press's event is held by another replica at this moment (mid-request): a 200 and an ephemeral note, nothing queued.
      const release = yield* claimEvent("slack-action:trigger-n1", "callback")
      const body = interaction("trigger-n1", asked, once)
      const held = yield* press(replicaA.url, body, signed(body))
      assert.deepStrictEqual([held.status, held.body], [200, { status: "in_progress" }])
      assert.deepStrictEqual(slack.ephemerals, [note("U42", pressInProgress._tag === "NotTaken" ? pressInProgress.note : "")])
      assert.strictEqual(slack.updates.length, 0, "nothing answered")
      yield* release()

      // The very same request (one signature) reaching a second replica while the first still holds it.
      const headers = signed(body, String(Number(nowSeconds()) - 1))
      const signature = InboundSignatures.replayKey("slack", headers[InboundSignatures.SLACK_SIGNATURE_HEADER]!)
      const releaseSignature = yield* claimEvent(signature, "signature")
      const twice = yield* press(replicaB.url, body, headers)
      assert.deepStrictEqual([twice.status, twice.body], [200, { status: "in_progress" }])
      assert.strictEqual(slack.ephemerals.length, 2)
      yield* releaseSignature()

      // Two deliveries of the press at once, one to each replica (each re-signed): one answer reaches the session.
      const [a, b] = yield* Effect.all([
        press(replicaA.url, body, signed(body, String(Number(nowSeconds()) - 2))),
        press(replicaB.url, body, signed(body, String(Number(nowSeconds()) - 3)))
      ], { concurrency: 2 })
      assert.deepStrictEqual([a.status, b.status], [200, 200])
      const statuses = [a.body.status, b.body.status].sort()
      assert.strictEqual(statuses.filter((s) => s === "prompted").length, 1, JSON.stringify(statuses))
      assert.include(["duplicate", "in_progress"], statuses.find((s) => s !== "prompted"))
      yield* promise(() => slack.waitForPosts(2, 30_000))
      assert.strictEqual(slack.posts[1]!.text, "echo: edit it [permission once]")
      // Another user's press afterwards, at either replica: told who answered.
      const late = interaction("trigger-n2", asked, once, "U77")
      assert.deepStrictEqual((yield* press(replicaB.url, late, signed(late))).body, { status: "refused" })
      assert.match(slack.ephemerals.at(-1)!.text, new RegExp(`^Already answered by <@U42> ${AT}\\.$`))

      const routes = yield* http("GET", `${url}/api/channels/bindings/${binding.id}/sessions`, admin)
      assert.deepStrictEqual(yield* answersOf(routes.body.routes[0].sessionId), [["permission_respond", { response: "once", answeredBy: "U42", answeredVia: "slack" }]])
      yield* replicaA.stop
      yield* replicaB.stop

      // A replica that cannot reach the cloud: the press is told so (Slack shows a bare error for a 503, and never retries).
      const deadCloud = `http://127.0.0.1:${yield* promise(freePort)}`
      const cut = yield* startGateway(deadCloud, gatewayToken, providers, env)
      const offline = interaction("trigger-n3", asked, once)
      const refused = yield* press(cut.url, offline, signed(offline))
      assert.deepStrictEqual([refused.status, refused.body], [200, { status: "unavailable" }])
      assert.deepStrictEqual(slack.ephemerals.at(-1), note("U42", pressUnavailable._tag === "NotTaken" ? pressUnavailable.note : ""))
      // A Slack event (which Slack does retry) still gets its 503.
      const message = JSON.stringify({ type: "event_callback", event_id: "EvN9", event: { type: "message", channel: "C7", user: "U42", text: "hi", ts: "1700000800.000100" } })
      assert.strictEqual((yield* http("POST", `${cut.url}/webhooks/slack`, undefined, message, signed(message))).status, 503)
      yield* cut.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("Telegram: an answer dead-lettered before its turn got it gives the ask back — asked again in the chat, saying why; a new press is taken and reaches the turn", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "6008" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:PN_TG", webhookSecretRef: "env:PN_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 }
      ], env)
      const update = (body: unknown) => http("POST", `${gateway.url}/webhooks/tg`, undefined, body, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })
      let updateId = 9_800
      const press = (user: number, data: string, messageId: number) =>
        update({ update_id: ++updateId, callback_query: { id: `cb-${updateId}`, from: { id: user, username: "pat" }, data, message: { message_id: messageId, chat: { id: 6008 }, text: "asked" } } })
      const lastNote = () => telegram.callbackAnswers.at(-1)!.text ?? ""

      // The turn is held by a worker that is stuck (this test holds its lease): the prompt runs and asks, and the answer
      // a press queues waits in the mailbox, where an operator dead-letters it.
      assert.strictEqual((yield* update({ update_id: ++updateId, message: { message_id: updateId, chat: { id: 6008 }, from: { id: 9 }, text: "edit it" } })).status, 202)
      const routes = yield* http("GET", `${url}/api/channels/bindings/${binding.id}/sessions`, admin)
      const sessionId = routes.body.routes[0].sessionId as string
      const lease = (yield* (yield* LeaseStore).claim("worker-stuck", 100, 600_000, 3)).find((l) => l.sessionId === sessionId)!
      const turn = Option.getOrThrow(yield* (yield* CommandQueue).next(lease))
      yield* (yield* EventLog).append(lease, [{
        type: "permission.requested",
        payload: { permissionId: "per_stuck", permission: "edit", patterns: ["a.txt"], commandId: turn.id },
        commandId: turn.id,
        attempt: 1
      }]).pipe(Effect.orDie)
      yield* promise(() => telegram.waitForSends(1, 30_000))
      const asked = telegram.sends[0]!
      assert.deepStrictEqual(asked.buttons.map(([label]) => label), ["Allow once", "Always", "Reject"])
      const [once, reject] = [asked.buttons[0]![1], asked.buttons[2]![1]]

      assert.deepStrictEqual((yield* press(9, once, asked.messageId)).body, { status: "prompted" })
      const answers = (yield* Effect.service(MemoryDatabase)).commands.filter((c) => c.sessionId === sessionId && c.kind === "permission_respond")
      assert.strictEqual(answers.length, 1)
      const dead = yield* http("POST", `${url}/api/admin/commands/${answers[0]!.id}/dead-letter`, admin, { reason: "the worker is stuck" })
      assert.strictEqual(dead.status, 200, JSON.stringify(dead.body))

      // The session's log says the answer will not run and asks again; the ask is still waiting.
      const log = yield* (yield* EventLog).read(sessionId, 0, 100)
      assert.deepStrictEqual(log.slice(-2).map((event) => event.type), ["command.dead_lettered", "permission.requested"])
      assert.deepInclude(log.at(-2)!.payload as object, { commandId: answers[0]!.id, kind: "permission_respond", reason: "the worker is stuck", cause: "operator" })
      const view = yield* http("GET", `${url}/api/sessions/${sessionId}/view`, admin)
      assert.deepStrictEqual(view.body.pendingPermissions.map((p: { permissionId: string }) => p.permissionId), ["per_stuck"])

      // The chat gets the ask again, with its buttons, saying why.
      yield* promise(() => telegram.waitForSends(2, 30_000))
      const askedAgain = telegram.sends[1]!
      assert.match(askedAgain.text, /^The earlier answer was not delivered \(the worker is stuck\): please answer again\.\nThe session asks for permission edit \(request per_stuck\)/)
      assert.deepStrictEqual(askedAgain.buttons.map(([label]) => label), ["Allow once", "Always", "Reject"])
      assert.strictEqual(askedAgain.buttons[2]![1], reject)

      // The same user presses on it (another answer, even): taken, not "You already answered this".
      const again = yield* press(9, reject, askedAgain.messageId)
      assert.deepStrictEqual(again.body, { status: "prompted" }, lastNote())
      assert.notMatch(lastNote(), /already answered/i)
      // Another user afterwards is told who answered: the taken answer, not the lost one.
      assert.deepStrictEqual((yield* press(10, once, askedAgain.messageId)).body, { status: "refused" })
      assert.match(lastNote(), new RegExp(`^Already answered by @pat ${AT}\\.$`))
      const delivered = Option.getOrThrow(yield* (yield* CommandQueue).nextAnswer(lease))
      assert.deepInclude(delivered.payload, { permissionId: "per_stuck", response: "reject", answeredBy: "9" })
      yield* gateway.stop
    }))
})
