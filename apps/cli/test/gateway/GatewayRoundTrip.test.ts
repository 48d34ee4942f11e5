import { InboundSignatures } from "@cowork/channels"
import { orgCredentialEnvPrefix } from "@cowork/domain"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { FakeSlack } from "../../../../packages/channels/test/support/FakeSlack.ts"
import { FakeTelegram } from "../../../../packages/channels/test/support/FakeTelegram.ts"
import { SmtpReceiver } from "../../../../packages/channels/test/support/SmtpReceiver.ts"
import { WebhookReceiver } from "../../../../packages/channels/test/support/WebhookReceiver.ts"
import {
  CloudLayer,
  createBinding,
  GATEWAY_ADMIN,
  http,
  issueGatewayToken,
  orgAdmin,
  startGateway,
  startWorker,
  until
} from "./GatewayStack.ts"

/**
 * What a user notices end to end: a message in Telegram / Slack / a signed webhook becomes a prompt on the bound
 * session, and the session's reply arrives at the provider; email replies arrive at an SMTP server. Web and worker
 * roles on the memory stack with the scripted runtime, a gateway against the web role's HTTP API, loopback fakes.
 */

const TG_TOKEN = "777001:canary-roundtrip-telegram-token"
const TG_HOOK = "canary-roundtrip-tg-webhook-secret"
const SLACK_TOKEN = "xoxb-canary-roundtrip-slack"
const SLACK_SIGNING = "canary-roundtrip-slack-signing"
const HOOK_IN = "canary-roundtrip-hook-in"
const HOOK_OUT = "canary-roundtrip-hook-out"
const SMTP_PASSWORD = "canary-roundtrip-smtp-password"
const env = { RT_TG: TG_TOKEN, RT_TG_HOOK: TG_HOOK, RT_SLACK: SLACK_TOKEN, RT_SLACK_SIGNING: SLACK_SIGNING, RT_HOOK_IN: HOOK_IN, RT_HOOK_OUT: HOOK_OUT, RT_SMTP: SMTP_PASSWORD }
const CANARIES = [TG_TOKEN, TG_HOOK, SLACK_TOKEN, SLACK_SIGNING, HOOK_IN, HOOK_OUT, SMTP_PASSWORD, GATEWAY_ADMIN]

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)
const nowSeconds = () => String(Math.floor(Date.now() / 1000))

it.layer(CloudLayer, { timeout: 120_000, excludeTestServices: true })("gateway round trips (memory stack, scripted runtime, provider fakes)", (it) => {
  it.effect("Telegram, Slack and a signed webhook prompt the bound session once and get its reply; email replies reach SMTP; a gateway token sees only its bindings", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      const slack = new FakeSlack(SLACK_TOKEN)
      const receiver = new WebhookReceiver(HOOK_OUT)
      const smtp = new SmtpReceiver({ user: "bot", password: SMTP_PASSWORD })
      yield* promise(() => Promise.all([telegram.start(), slack.start(), receiver.start(), smtp.start()]))
      yield* Effect.addFinalizer(() => promise(() => Promise.all([telegram.stop(), slack.stop(), receiver.stop(), smtp.stop()])))

      const { orgId, token: admin, url, api } = yield* orgAdmin
      // The binding's own credential, in its org's namespace (the same token as the provider's here).
      const ownTg = `${orgCredentialEnvPrefix(orgId)}TG`
      const tgBinding = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "1001", credentialRef: `env:${ownTg}` })
      const slackBinding = yield* createBinding(url, admin, { providerKind: "slack", providerId: "slack", externalTarget: "C1" })
      const hookBinding = yield* createBinding(url, admin, { providerKind: "webhook", providerId: "hooks", externalTarget: receiver.url })
      const mailBinding = yield* createBinding(url, admin, { providerKind: "email", providerId: "mail", externalTarget: "alice@example.com" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [tgBinding.id, slackBinding.id, hookBinding.id, mailBinding.id])

      const worker = yield* startWorker("worker-gateway-rt")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:RT_TG", webhookSecretRef: "env:RT_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 },
        { id: "slack", kind: "slack", botTokenRef: "env:RT_SLACK", signingSecretRef: "env:RT_SLACK_SIGNING", apiUrl: slack.apiUrl, timeoutMs: 2_000 },
        { id: "hooks", kind: "webhook", inboundSecretRef: "env:RT_HOOK_IN", outboundSecretRef: "env:RT_HOOK_OUT", timeoutMs: 2_000 },
        { id: "mail", kind: "email", host: "127.0.0.1", port: smtp.port, secure: false, ignoreTls: true, user: "bot", passwordRef: "env:RT_SMTP", from: "cowork@example.com", timeoutMs: 2_000 }
      ], { ...env, [ownTg]: TG_TOKEN })
      yield* until("the gateway is ready", Effect.map(http("GET", `${gateway.url}/ready`, undefined), (r) => (r.status === 200 ? true : undefined)))

      // Telegram: an update with the secret token header → a prompt on a new session → the reply at sendMessage.
      const update = { update_id: 5001, message: { message_id: 1, chat: { id: 1001 }, from: { id: 555, is_bot: false }, text: "hello from telegram" } }
      const tgPost = () => http("POST", `${gateway.url}/webhooks/tg`, undefined, update, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })
      assert.strictEqual((yield* tgPost()).status, 202)
      yield* promise(() => telegram.waitForSends(1, 30_000))
      assert.deepInclude(telegram.sends[0], { chatId: "1001", text: "echo: hello from telegram" })
      const retried = yield* tgPost()
      assert.deepStrictEqual([retried.status, retried.body], [200, { status: "duplicate" }], "Telegram's retry of the update prompts nothing")

      // Slack: a signed Events API callback → the reply in the message's thread.
      const slackBody = JSON.stringify({
        type: "event_callback", event_id: "Ev777",
        event: { type: "message", channel: "C1", user: "U42", text: "hello from slack", ts: "1700000000.000100" }
      })
      const ts = nowSeconds()
      const slackPost = yield* http("POST", `${gateway.url}/webhooks/slack`, undefined, slackBody, {
        [InboundSignatures.SLACK_TIMESTAMP_HEADER]: ts,
        [InboundSignatures.SLACK_SIGNATURE_HEADER]: InboundSignatures.signSlack(SLACK_SIGNING, ts, slackBody)
      })
      assert.strictEqual(slackPost.status, 200, JSON.stringify(slackPost.body))
      assert.deepStrictEqual(slackPost.body, { status: "prompted" })
      yield* promise(() => slack.waitForPosts(1, 30_000))
      assert.deepInclude(slack.posts[0], { channel: "C1", text: "echo: hello from slack", threadTs: "1700000000.000100" })

      // The signed webhook → the reply POSTed to the binding's URL with the delivery's idempotency key.
      const hookBody = JSON.stringify({ eventId: "hook-evt-1", target: receiver.url, userId: "ext-user-1", text: "hello from a webhook" })
      const hts = nowSeconds()
      const hookPost = yield* http("POST", `${gateway.url}/webhooks/hooks`, undefined, hookBody, {
        [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: hts,
        [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(HOOK_IN, hts, hookBody)
      })
      assert.strictEqual(hookPost.status, 202, JSON.stringify(hookPost.body))
      yield* promise(() => receiver.waitForKeys(1, 30_000))
      const received = receiver.received[0]!
      assert.isTrue(received.signatureValid)
      assert.match(received.idempotencyKey!, /^ocd_/)
      assert.deepInclude(received.body as object, { text: "echo: hello from a webhook", eventType: "assistant.message" })

      // Email: a session bound to the mail binding; its reply arrives at the SMTP server with the idempotency key.
      const { session } = yield* api.sessions.create({ payload: { title: "mail" } })
      const bound = yield* http("POST", `${url}/api/channels/bindings/${mailBinding.id}/sessions`, admin, { externalThreadId: "alice@example.com", sessionId: session.id })
      assert.strictEqual(bound.status, 201, JSON.stringify(bound.body))
      yield* api.sessions.prompt({ params: { id: session.id }, payload: { text: "hello by mail" } })
      yield* promise(() => smtp.waitForMails(1, 30_000))
      assert.deepStrictEqual(smtp.mails[0]!.to, ["alice@example.com"])
      assert.match(smtp.mails[0]!.idempotencyKey!, /^ocd_/)
      assert.include(smtp.mails[0]!.raw, "echo: hello by mail")

      // Everything was acked sent exactly once.
      const sent = yield* until("four deliveries sent", Effect.map(http("GET", `${gateway.url}/deliveries?status=sent`, undefined, undefined, gateway.admin), (r) =>
        r.status === 200 && (r.body.deliveries as Array<unknown>).length >= 4 ? r.body.deliveries as Array<{ id: string; channelBindingId: string }> : undefined))
      assert.strictEqual(sent.length, 4)
      assert.strictEqual(telegram.sends.length, 1)

      // A gateway token bound to the Slack binding only: none of the others' deliveries, and no claim on them.
      const slackOnly = yield* issueGatewayToken(url, admin, [slackBinding.id])
      const listed = yield* http("GET", `${url}/api/channels/deliveries`, slackOnly)
      assert.strictEqual(listed.status, 200)
      assert.deepStrictEqual([...new Set((listed.body.deliveries as Array<{ channelBindingId: string }>).map((d) => d.channelBindingId))], [slackBinding.id])
      const foreign = sent.find((d) => d.channelBindingId === tgBinding.id)!
      assert.strictEqual((yield* http("GET", `${url}/api/channels/deliveries/${foreign.id}`, slackOnly)).status, 404)
      assert.strictEqual((yield* http("GET", `${url}/api/channels/deliveries?channelBindingId=${tgBinding.id}`, slackOnly)).status, 404)
      assert.strictEqual((yield* http("POST", `${url}/api/channels/deliveries/${foreign.id}/retry`, slackOnly)).status, 404)

      // Credentials never appear in what the gateway or the cloud shows.
      const shown = [
        yield* http("GET", `${gateway.url}/diagnostics`, undefined, undefined, gateway.admin),
        yield* http("GET", `${gateway.url}/metrics`, undefined, undefined, gateway.admin),
        yield* http("GET", `${gateway.url}/deliveries`, undefined, undefined, gateway.admin),
        yield* http("GET", `${gateway.url}/ready`, undefined),
        yield* http("GET", `${url}/api/channels/bindings`, admin),
        yield* http("GET", `${url}/api/channels/deliveries`, admin)
      ].map((r) => typeof r.body === "string" ? r.body : JSON.stringify(r.body))
      for (const text of shown) for (const canary of CANARIES) assert.notInclude(text, canary)
      assert.include(shown[0]!, "deliveryOperator")

      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("a permission request reaches Telegram with answer buttons; pressing one answers it and the turn's reply follows", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "2002" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-hitl")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:RT_TG", webhookSecretRef: "env:RT_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 }
      ], env)
      const update = (body: unknown) =>
        http("POST", `${gateway.url}/webhooks/tg`, undefined, body, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })

      const asked = yield* update({ update_id: 7001, message: { message_id: 1, chat: { id: 2002 }, from: { id: 9 }, text: "edit it [[permission]]" } })
      assert.strictEqual(asked.status, 202)
      yield* promise(() => telegram.waitForSends(1, 30_000))
      const request = telegram.sends[0]!
      assert.include(request.text, "permission edit")
      assert.deepStrictEqual(request.buttons.map(([label]) => label), ["Allow once", "Always", "Reject"])
      const once = request.buttons[0]![1]
      assert.match(once, /^answer:per_[^:]+:once$/)

      const pressed = yield* update({ update_id: 7002, callback_query: { id: "cb-1", from: { id: 9 }, data: once, message: { message_id: 2, chat: { id: 2002 } } } })
      assert.strictEqual(pressed.status, 202, JSON.stringify(pressed.body))
      yield* promise(() => telegram.waitForSends(2, 30_000))
      assert.strictEqual(telegram.sends[1]!.text, "echo: edit it [permission once]")
      assert.deepStrictEqual(telegram.sends[1]!.buttons, [])
      const again = yield* update({ update_id: 7002, callback_query: { id: "cb-1", from: { id: 9 }, data: once, message: { message_id: 2, chat: { id: 2002 } } } })
      assert.deepStrictEqual([again.status, again.body], [200, { status: "duplicate" }])

      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("Telegram: every press is answered; a two-question ask is answered by a pick on each row; another session's request id in a press answers nothing", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { token: admin, url } = yield* orgAdmin
      const mine = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "3003" })
      const theirs = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "3004" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [mine.id, theirs.id])
      const worker = yield* startWorker("worker-gateway-tg-picks")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:RT_TG", webhookSecretRef: "env:RT_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 }
      ], env)
      const update = (body: unknown) =>
        http("POST", `${gateway.url}/webhooks/tg`, undefined, body, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })
      type Rows = ReadonlyArray<ReadonlyArray<readonly [string, string]>>
      /** A press on a message this fake sent, carrying the keyboard it shows now (as Telegram does). */
      const press = (updateId: number, callbackId: string, chat: number, messageId: number, text: string, rows: Rows, data: string) =>
        update({
          update_id: updateId,
          callback_query: {
            id: callbackId, from: { id: 9, username: "pat", first_name: "Pat" }, data,
            message: { message_id: messageId, chat: { id: chat }, text, reply_markup: { inline_keyboard: rows.map((row) => row.map(([label, d]) => ({ text: label, callback_data: d }))) } }
          }
        })

      // Two questions: one keyboard row of options each, numbered like the text.
      assert.strictEqual((yield* update({ update_id: 8001, message: { message_id: 1, chat: { id: 3003 }, from: { id: 9 }, text: "plan [[question:2]]" } })).status, 202)
      yield* promise(() => telegram.waitForSends(1, 30_000))
      const asked = telegram.sends[0]!
      assert.include(asked.text, "1. Confirm")
      assert.include(asked.text, "2. Part 2")
      assert.deepStrictEqual(asked.rows.map((row) => row.map(([label]) => label)), [["1: yes", "1: no"], ["2: red", "2: blue"], ["Reject"]])

      // The cloud's answer route resolves choices against the pending question: one index per question, each an option.
      const requestId = asked.rows[0]![0]![1].split(":")[1]!
      const answerRoute = (eventId: string, body: Record<string, unknown>) =>
        http("POST", `${url}/api/channels/bindings/${mine.id}/answer`, gatewayToken, {
          providerEventId: eventId, externalThreadId: "3003", externalUserId: "9", action: "question-reply", requestId, ...body
        })
      for (const [eventId, choices] of [["c1", [0]], ["c2", [0, 2]], ["c3", [0, 36]], ["c4", []]] as const) {
        const refused = yield* answerRoute(eventId, { choices })
        assert.strictEqual(refused.status, 400, `${JSON.stringify(choices)}: ${JSON.stringify(refused.body)}`)
        assert.include(JSON.stringify(refused.body), "choices")
      }
      // Text answers too: one list per question asked, else a 400 naming `answers` (opencode takes them by position).
      const short = yield* answerRoute("c6", { answers: [["yes"]] })
      assert.strictEqual(short.status, 400, JSON.stringify(short.body))
      assert.strictEqual(short.body.error.details?.field, "answers")
      const notPending = yield* answerRoute("c5", { requestId: "que_not_pending", choices: [0, 0] })
      assert.strictEqual(notPending.status, 409, JSON.stringify(notPending.body))

      // The first pick: nothing reaches the session; the callback is answered and the keyboard shows the choice.
      const first = yield* press(8002, "cb-p1", 3003, asked.messageId, asked.text, asked.rows, asked.rows[0]![1]![1])
      assert.deepStrictEqual([first.status, first.body], [200, { status: "selected" }])
      assert.deepStrictEqual(telegram.callbackAnswers.at(-1), { callbackId: "cb-p1", text: "Noted. 1 more to choose." })
      const marked = telegram.edits.at(-1)!
      assert.deepInclude(marked, { method: "editMessageReplyMarkup", chatId: "3003", messageId: asked.messageId })
      assert.deepStrictEqual(marked.rows.map((row) => row.map(([label]) => label)), [["1: yes", "✓ 1: no"], ["2: red", "2: blue"], ["Reject"]])

      // The second pick, from the keyboard as it now is, answers both questions at once.
      const second = yield* press(8003, "cb-p2", 3003, asked.messageId, asked.text, marked.rows, marked.rows[1]![1]![1])
      assert.deepStrictEqual([second.status, second.body], [202, { status: "prompted" }])
      assert.deepStrictEqual(telegram.callbackAnswers.at(-1), { callbackId: "cb-p2", text: "Answered: 1: no, 2: blue" })
      assert.deepInclude(telegram.edits.at(-1), { method: "editMessageText", text: `${asked.text}\n\nAnswered: 1: no, 2: blue (by @pat)` })
      assert.deepStrictEqual(telegram.edits.at(-1)!.rows, [])
      yield* promise(() => telegram.waitForSends(2, 30_000))
      assert.deepInclude(telegram.sends[1], { chatId: "3003", text: "echo: plan [answered: no, blue]" })
      // Pressed again (a stale keyboard): answered as already taken, nothing edited.
      const edits = telegram.edits.length
      const stale = yield* press(8004, "cb-p3", 3003, asked.messageId, asked.text, marked.rows, marked.rows[1]![0]![1])
      assert.deepStrictEqual([stale.status, stale.body], [200, { status: "refused" }])
      assert.match(telegram.callbackAnswers.at(-1)!.text!, /^You already answered this at \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$/)
      assert.strictEqual(telegram.edits.length, edits)

      // Another chat's session asks; a press in this chat naming its request id is not pending here: refused.
      assert.strictEqual((yield* update({ update_id: 8101, message: { message_id: 1, chat: { id: 3004 }, from: { id: 9 }, text: "other [[question]]" } })).status, 202)
      yield* promise(() => telegram.waitForSends(3, 30_000))
      const theirAsk = telegram.sends[2]!
      assert.strictEqual(theirAsk.chatId, "3004")
      const theirYes = theirAsk.rows[0]![0]![1]
      const forged = yield* press(8102, "cb-f", 3003, asked.messageId, asked.text, theirAsk.rows, theirYes)
      assert.deepStrictEqual([forged.status, forged.body], [200, { status: "refused" }])
      assert.deepStrictEqual(telegram.callbackAnswers.at(-1)!.callbackId, "cb-f")
      // Data the gateway did not make is answered too (no spinner), and ignored.
      const garbage = yield* press(8103, "cb-g", 3003, asked.messageId, asked.text, [], "run:something")
      assert.deepStrictEqual([garbage.status, garbage.body], [200, { status: "ignored" }])
      assert.deepStrictEqual(telegram.callbackAnswers.at(-1), { callbackId: "cb-g", text: "This button does not answer anything." })
      // Their question is still theirs to answer.
      const theirs1 = yield* press(8104, "cb-t", 3004, theirAsk.messageId, theirAsk.text, theirAsk.rows, theirYes)
      assert.deepStrictEqual([theirs1.status, theirs1.body], [202, { status: "prompted" }])
      yield* promise(() => telegram.waitForSends(4, 30_000))
      assert.deepInclude(telegram.sends[3], { chatId: "3004", text: "echo: other [answered: yes]" })
      assert.strictEqual(telegram.sends.filter((send) => send.chatId === "3003").length, 2, "the forged press continued no turn")

      // A pick that only changes the message is still checked: a user the binding does not admit, or a chat without
      // a binding, changes nothing.
      const editsBefore = telegram.edits.length
      assert.strictEqual((yield* http("PATCH", `${url}/api/channels/bindings/${mine.id}`, admin, { inboundPolicy: "linked_only" })).status, 200)
      const unadmitted = yield* press(8201, "cb-u", 3003, asked.messageId, asked.text, asked.rows, asked.rows[0]![0]![1])
      assert.deepStrictEqual([unadmitted.status, unadmitted.body], [200, { status: "refused" }])
      assert.deepStrictEqual(telegram.callbackAnswers.at(-1), { callbackId: "cb-u", text: "Not taken: you may not answer here." })
      const unbound = yield* press(8202, "cb-n", 9999, asked.messageId, asked.text, asked.rows, asked.rows[0]![0]![1])
      assert.deepStrictEqual([unbound.status, unbound.body], [200, { status: "unbound" }])
      assert.strictEqual(telegram.edits.length, editsBefore)

      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("Slack: answer buttons on a permission / question; a signed interaction or a threaded reply answers it and the turn's reply follows; forged and replayed interactions answer nothing", () =>
    Effect.gen(function*() {
      const slack = new FakeSlack(SLACK_TOKEN)
      yield* promise(() => slack.start())
      yield* Effect.addFinalizer(() => promise(() => slack.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "slack", providerId: "slack", externalTarget: "C9" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-slack-hitl")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "slack", kind: "slack", botTokenRef: "env:RT_SLACK", signingSecretRef: "env:RT_SLACK_SIGNING", apiUrl: slack.apiUrl, timeoutMs: 2_000 }
      ], env)
      const signed = (body: string, secret = SLACK_SIGNING, ts = nowSeconds()) => ({
        [InboundSignatures.SLACK_TIMESTAMP_HEADER]: ts,
        [InboundSignatures.SLACK_SIGNATURE_HEADER]: InboundSignatures.signSlack(secret, ts, body)
      })
      const event = (eventId: string, text: string, ts: string, threadTs?: string) => {
        const body = JSON.stringify({
          type: "event_callback", event_id: eventId,
          event: { type: "message", channel: "C9", user: "U42", text, ts, ...(threadTs === undefined ? {} : { thread_ts: threadTs }) }
        })
        return http("POST", `${gateway.url}/webhooks/slack`, undefined, body, signed(body))
      }
      /** The form body Slack posts when a button is pressed (`payload=<block_actions JSON>`). */
      const interaction = (triggerId: string, post: { ts: string; text: string; threadTs?: string | undefined }, value: string, user = "U42") =>
        `payload=${encodeURIComponent(JSON.stringify({
          type: "block_actions", trigger_id: triggerId, user: { id: user }, channel: { id: "C9" },
          container: { type: "message", channel_id: "C9", message_ts: post.ts, thread_ts: post.threadTs },
          message: { ts: post.ts, thread_ts: post.threadTs, text: post.text },
          actions: [{ action_id: "answer_0", block_id: "cowork_answer", type: "button", value, action_ts: "1700000999.000001" }]
        }))}`
      const press = (body: string, headers: Record<string, string>) =>
        http("POST", `${gateway.url}/webhooks/slack`, undefined, body, { "content-type": "application/x-www-form-urlencoded", ...headers })

      // A permission request: the post in the thread carries once / always / reject buttons.
      assert.strictEqual((yield* event("EvP1", "edit it [[permission]]", "1700000100.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(1, 30_000))
      const asked = slack.posts[0]!
      assert.include(asked.text, "permission edit")
      assert.strictEqual(asked.threadTs, "1700000100.000100")
      assert.deepStrictEqual(asked.buttons.map(([label]) => label), ["Allow once", "Always", "Reject"])
      const once = asked.buttons[0]![1]
      assert.match(once, /^answer:per_[^:]+:once$/)

      // A forged interaction (wrong signing secret) is refused and answers nothing.
      const pressBody = interaction("trigger-p1", asked, once)
      const forged = yield* press(pressBody, signed(pressBody, "not-the-signing-secret"))
      assert.strictEqual(forged.status, 401)
      // The signed one answers the permission: the waiting turn continues and its reply arrives in the thread.
      const headers = signed(pressBody)
      const pressed = yield* press(pressBody, headers)
      assert.deepStrictEqual([pressed.status, pressed.body], [200, { status: "prompted" }])
      // The pressed message shows the answer instead of its buttons.
      assert.deepStrictEqual(slack.updates.map((u) => [u.channel, u.ts, u.buttons.length]), [["C9", asked.ts, 0]])
      assert.include(slack.updates[0]!.text, "Answered once (<@U42>)")
      yield* promise(() => slack.waitForPosts(2, 30_000))
      assert.deepInclude(slack.posts[1], { channel: "C9", text: "echo: edit it [permission once]", threadTs: "1700000100.000100" })
      assert.deepStrictEqual(slack.posts[1]!.buttons, [])
      // The same request again is a replayed signature; re-signed (Slack's retry) it is the same trigger: a duplicate.
      assert.strictEqual((yield* press(pressBody, headers)).status, 409)
      // A timestamp one second before the original's: a different signature whatever the clock did meanwhile (now - 1
      // equalled the original's second when the turn took over a second, and the retry was a 409 replay).
      const resent = yield* press(pressBody, signed(pressBody, SLACK_SIGNING, String(Number(headers[InboundSignatures.SLACK_TIMESTAMP_HEADER]) - 1)))
      assert.deepStrictEqual([resent.status, resent.body], [200, { status: "duplicate" }])
      assert.strictEqual(slack.updates.length, 1, "a duplicate press edits nothing")
      // …and the presser alone is told, in the thread (Slack has no callback answer: an ephemeral message).
      assert.deepStrictEqual(slack.ephemerals, [{ channel: "C9", user: "U42", text: "Already answered.", threadTs: "1700000100.000100" }])
      // Another user pressing a different answer afterwards: refused, and told who answered.
      const rejectBody = interaction("trigger-p2", asked, asked.buttons[2]![1], "U77")
      const late = yield* press(rejectBody, signed(rejectBody))
      assert.deepStrictEqual([late.status, late.body], [200, { status: "refused" }])
      assert.deepInclude(slack.ephemerals.at(-1), { channel: "C9", user: "U77", threadTs: "1700000100.000100" })
      assert.match(slack.ephemerals.at(-1)!.text, /^Already answered by <@U42> at \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$/)
      assert.strictEqual(slack.updates.length, 1, "a refused press edits nothing")

      // A question: its options as buttons; a plain reply in the thread answers it.
      assert.strictEqual((yield* event("EvQ1", "pick one [[question]]", "1700000200.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(3, 30_000))
      const question = slack.posts[2]!
      assert.deepStrictEqual(question.buttons.map(([label]) => label), ["yes", "no", "Reject"])
      assert.strictEqual((yield* event("EvQ2", "no", "1700000200.000300", "1700000200.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(4, 30_000))
      assert.deepInclude(slack.posts[3], { text: "echo: pick one [answered: no]", threadTs: "1700000200.000100" })

      // A question answered by its button.
      assert.strictEqual((yield* event("EvQ3", "again [[question]]", "1700000300.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(5, 30_000))
      const yes = slack.posts[4]!.buttons[0]![1]
      const yesBody = interaction("trigger-q3", slack.posts[4]!, yes)
      assert.strictEqual((yield* press(yesBody, signed(yesBody))).status, 200)
      yield* promise(() => slack.waitForPosts(6, 30_000))
      assert.deepInclude(slack.posts[5], { text: "echo: again [answered: yes]", threadTs: "1700000300.000100" })
      const sent = yield* until("six deliveries sent", Effect.map(http("GET", `${gateway.url}/deliveries?status=sent`, undefined, undefined, gateway.admin), (r) =>
        r.status === 200 && (r.body.deliveries as Array<unknown>).length >= 6 ? r.body.deliveries as Array<unknown> : undefined))
      assert.strictEqual(sent.length, 6)
      assert.strictEqual(slack.posts.length, 6, "each answer continued its turn once")

      // Two questions: one actions block each. A pick on the first re-renders the buttons with the selection; the
      // pick on the second, from the message as it now is, answers both.
      assert.strictEqual((yield* event("EvM1", "plan [[question:2]]", "1700000400.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(7, 30_000))
      const twoAsked = slack.posts[6]!
      assert.deepStrictEqual(twoAsked.buttons.map(([label]) => label), ["1: yes", "1: no", "2: red", "2: blue", "Reject"])
      const pick = (triggerId: string, blocks: unknown, value: string) =>
        `payload=${encodeURIComponent(JSON.stringify({
          type: "block_actions", trigger_id: triggerId, user: { id: "U42" }, channel: { id: "C9" },
          container: { type: "message", channel_id: "C9", message_ts: twoAsked.ts, thread_ts: twoAsked.threadTs },
          message: { ts: twoAsked.ts, thread_ts: twoAsked.threadTs, text: twoAsked.text, blocks },
          actions: [{ action_id: "answer_0", type: "button", value, action_ts: "1700000999.000002" }]
        }))}`
      const firstPick = pick("trigger-m1", twoAsked.blocks, twoAsked.buttons[0]![1])
      const picked = yield* press(firstPick, signed(firstPick))
      assert.deepStrictEqual([picked.status, picked.body], [200, { status: "selected" }])
      const selection = slack.updates.at(-1)!
      assert.deepStrictEqual(selection.buttons.map(([label]) => label), ["✓ 1: yes", "1: no", "2: red", "2: blue", "Reject"])
      const secondPick = pick("trigger-m2", selection.blocks, selection.buttons[3]![1])
      assert.deepStrictEqual((yield* press(secondPick, signed(secondPick))).body, { status: "prompted" })
      assert.include(slack.updates.at(-1)!.text, "Answered 1: yes, 2: blue (<@U42>)")
      yield* promise(() => slack.waitForPosts(8, 30_000))
      assert.deepInclude(slack.posts[7], { text: "echo: plan [answered: yes, blue]", threadTs: "1700000400.000100" })

      // A threaded reply with one line per question answers each with its line.
      assert.strictEqual((yield* event("EvM2", "again [[question:2]]", "1700000500.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(9, 30_000))
      assert.strictEqual((yield* event("EvM3", "no\nred", "1700000500.000300", "1700000500.000100")).status, 200)
      yield* promise(() => slack.waitForPosts(10, 30_000))
      assert.deepInclude(slack.posts[9], { text: "echo: again [answered: no, red]", threadTs: "1700000500.000100" })

      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("email: a relay's signed mail prompts; the permission request mail says how to answer; the reply answers it and the turn's reply is mailed", () =>
    Effect.gen(function*() {
      const smtp = new SmtpReceiver({ user: "bot", password: SMTP_PASSWORD })
      yield* promise(() => smtp.start())
      yield* Effect.addFinalizer(() => promise(() => smtp.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "email", providerId: "mail", externalTarget: "bob@example.com" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const worker = yield* startWorker("worker-gateway-mail-hitl")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "mail", kind: "email", host: "127.0.0.1", port: smtp.port, secure: false, ignoreTls: true, user: "bot", passwordRef: "env:RT_SMTP", inboundSecretRef: "env:RT_HOOK_IN", from: "cowork@example.com", timeoutMs: 2_000 }
      ], env)
      const inbound = (mail: { messageId: string; from: string; text: string }, secret = HOOK_IN) => {
        const body = JSON.stringify(mail)
        const ts = nowSeconds()
        return http("POST", `${gateway.url}/webhooks/mail`, undefined, body, {
          [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts,
          [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, ts, body)
        })
      }
      const first = yield* inbound({ messageId: "<m1@mail.example.com>", from: "Bob <bob@example.com>", text: "edit it [[permission]]" })
      assert.strictEqual(first.status, 202, JSON.stringify(first.body))
      yield* promise(() => smtp.waitForMails(1, 30_000))
      assert.deepStrictEqual(smtp.mails[0]!.to, ["bob@example.com"])
      assert.include(smtp.mails[0]!.raw, "permission edit")
      assert.include(smtp.mails[0]!.raw, "Reply to this email with once, always or reject.")
      assert.strictEqual((yield* inbound({ messageId: "<m2@mail.example.com>", from: "bob@example.com", text: "once" }, "forged-relay-secret")).status, 401)
      const reply = yield* inbound({ messageId: "<m2@mail.example.com>", from: "bob@example.com", text: "once\n\nOn Mon, Nov 30, 2026 cowork wrote:\n> The session asks for permission edit" })
      assert.strictEqual(reply.status, 202, JSON.stringify(reply.body))
      yield* promise(() => smtp.waitForMails(2, 30_000))
      assert.include(smtp.mails[1]!.raw, "echo: edit it [permission once]")
      const again = yield* inbound({ messageId: "<m2@mail.example.com>", from: "bob@example.com", text: "once" })
      assert.deepStrictEqual([again.status, again.body], [200, { status: "duplicate" }], "the relay's retry of the same mail")
      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
      assert.strictEqual(smtp.mails.length, 2)
    }))

  it.effect("a binding's own credentialRef: the gateway resolves it and sends with it while the provider's configured token is refused; the binding stays active and its reads show only the reference", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { orgId, token: admin, url } = yield* orgAdmin
      const ownTg = `${orgCredentialEnvPrefix(orgId)}TG_OWN`
      const shared = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "4004" })
      const owned = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "5005", credentialRef: `env:${ownTg}` })
      const gatewayToken = yield* issueGatewayToken(url, admin, [shared.id, owned.id])
      const worker = yield* startWorker("worker-gateway-own-credential")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "tg", kind: "telegram", botTokenRef: "env:RT_WRONG", webhookSecretRef: "env:RT_TG_HOOK", apiRoot: telegram.apiRoot, timeoutMs: 2_000 }
      ], { ...env, RT_WRONG: "123:canary-refused-provider-token", [ownTg]: TG_TOKEN })
      const status = (id: string) => Effect.map(http("GET", `${url}/api/channels/bindings/${id}`, admin), (r) => r.body.binding as { status: string; credentialRef: string | null })
      yield* until("the provider's token refused: its shared binding auth_required", Effect.map(status(shared.id), (b) => (b.status === "auth_required" ? true : undefined)))

      const update = { update_id: 8001, message: { message_id: 1, chat: { id: 5005 }, from: { id: 77 }, text: "with my own bot" } }
      const posted = yield* http("POST", `${gateway.url}/webhooks/tg`, undefined, update, { [InboundSignatures.TELEGRAM_SECRET_HEADER]: TG_HOOK })
      assert.strictEqual(posted.status, 202, JSON.stringify(posted.body))
      yield* promise(() => telegram.waitForSends(1, 30_000))
      assert.deepInclude(telegram.sends[0], { chatId: "5005", text: "echo: with my own bot" })
      const binding = yield* status(owned.id)
      assert.deepStrictEqual([binding.status, binding.credentialRef], ["active", `env:${ownTg}`])

      const shown = [
        yield* http("GET", `${gateway.url}/diagnostics`, undefined, undefined, gateway.admin),
        yield* http("GET", `${gateway.url}/metrics`, undefined, undefined, gateway.admin),
        yield* http("GET", `${gateway.url}/deliveries`, undefined, undefined, gateway.admin),
        yield* http("GET", `${url}/api/channels/bindings`, admin),
        yield* http("GET", `${url}/api/channels/deliveries`, admin)
      ].map((r) => typeof r.body === "string" ? r.body : JSON.stringify(r.body))
      for (const text of shown) for (const canary of [TG_TOKEN, "canary-roundtrip-telegram", "canary-refused-provider-token"]) assert.notInclude(text, canary)
      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("a binding's own inbound secret: its requests come signed with it to /webhooks/:providerId/:bindingId and reach only that binding; the provider-wide secret no longer admits it", () =>
    Effect.gen(function*() {
      const receiver = new WebhookReceiver(HOOK_OUT)
      yield* promise(() => receiver.start())
      yield* Effect.addFinalizer(() => promise(() => receiver.stop()))
      const { orgId, token: admin, url } = yield* orgAdmin
      const ownIn = `${orgCredentialEnvPrefix(orgId)}HOOK_IN`
      const ownSecret = "canary-roundtrip-binding-inbound-secret"
      // Store time: a reference outside the org's namespace is refused naming the field (and not echoed).
      const outside = yield* http("POST", `${url}/api/channels/bindings`, admin, {
        providerKind: "webhook", providerId: "hooks", displayName: "x", externalTarget: `${receiver.url}/outside`, inboundCredentialRef: "env:RT_HOOK_IN"
      })
      assert.strictEqual(outside.status, 400, JSON.stringify(outside.body))
      assert.include(JSON.stringify(outside.body), "inboundCredentialRef")
      assert.notInclude(JSON.stringify(outside.body), "RT_HOOK_IN")
      const own = yield* createBinding(url, admin, { providerKind: "webhook", providerId: "hooks", externalTarget: `${receiver.url}/own`, inboundCredentialRef: `env:${ownIn}` })
      const shared = yield* createBinding(url, admin, { providerKind: "webhook", providerId: "hooks", externalTarget: `${receiver.url}/shared` })
      assert.strictEqual((own as { inboundCredentialRef?: unknown }).inboundCredentialRef, `env:${ownIn}`)
      const gatewayToken = yield* issueGatewayToken(url, admin, [own.id, shared.id])
      const worker = yield* startWorker("worker-gateway-own-inbound")
      const gateway = yield* startGateway(url, gatewayToken, [
        { id: "hooks", kind: "webhook", inboundSecretRef: "env:RT_HOOK_IN", outboundSecretRef: "env:RT_HOOK_OUT", timeoutMs: 2_000 }
      ], { ...env, [ownIn]: ownSecret })
      yield* until("the gateway is ready", Effect.map(http("GET", `${gateway.url}/ready`, undefined), (r) => (r.status === 200 ? true : undefined)))
      const post = (path: string, event: Record<string, unknown>, secret: string) => {
        const body = JSON.stringify(event)
        const ts = nowSeconds()
        return http("POST", `${gateway.url}${path}`, undefined, body, {
          [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts,
          [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, ts, body)
        })
      }
      const event = (eventId: string, target: string, text: string) => ({ eventId, target, userId: "ext-1", text })

      // Its own path, its own secret: a prompt on that binding, the reply at its URL.
      const accepted = yield* post(`/webhooks/hooks/${own.id}`, event("own-1", own.id, "via my own secret"), ownSecret)
      assert.deepStrictEqual([accepted.status, accepted.body], [202, { status: "prompted" }])
      yield* promise(() => receiver.waitForKeys(1, 30_000))
      assert.deepInclude(receiver.received[0]!.body as object, { text: "echo: via my own secret" })
      // The provider-wide secret on its path, and its own secret on the provider-wide path, are refused.
      assert.strictEqual((yield* post(`/webhooks/hooks/${own.id}`, event("own-2", own.id, "provider secret"), HOOK_IN)).status, 401)
      assert.strictEqual((yield* post("/webhooks/hooks", event("own-3", own.id, "own secret, shared path"), ownSecret)).status, 401)
      // The provider-wide secret naming the binding that has its own: not admitted (unbound), nothing prompted.
      const sharedPath = yield* post("/webhooks/hooks", event("own-4", own.id, "provider secret naming it"), HOOK_IN)
      assert.deepStrictEqual([sharedPath.status, sharedPath.body], [200, { status: "unbound" }])
      // Its own secret naming another binding: that binding is not reached.
      const across = yield* post(`/webhooks/hooks/${own.id}`, event("own-5", shared.id, "own secret naming another"), ownSecret)
      assert.deepStrictEqual([across.status, across.body], [200, { status: "unbound" }])
      // A binding without its own secret has no such path; the provider-wide path still serves it.
      assert.strictEqual((yield* post(`/webhooks/hooks/${shared.id}`, event("sh-1", shared.id, "no own secret"), HOOK_IN)).status, 404)
      assert.strictEqual((yield* post("/webhooks/hooks", event("sh-2", shared.id, "the shared way"), HOOK_IN)).status, 202)
      yield* promise(() => receiver.waitForKeys(2, 30_000))
      assert.deepStrictEqual(receiver.received.map((r) => (r.body as { text: string }).text).sort(), ["echo: the shared way", "echo: via my own secret"])

      // A webhook answers an ask of several questions at once with one option index per question.
      assert.strictEqual((yield* post(`/webhooks/hooks/${own.id}`, event("own-6", own.id, "plan [[question:2]]"), ownSecret)).status, 202)
      yield* promise(() => receiver.waitForKeys(3, 30_000))
      const asked = receiver.received[2]!.body as { eventType: string; payload: { requestId: string } }
      assert.strictEqual(asked.eventType, "question.asked")
      const answer = { ...event("own-7", own.id, "answer"), answer: { requestId: asked.payload.requestId, choices: [1, 1] } }
      assert.deepStrictEqual((yield* post(`/webhooks/hooks/${own.id}`, answer, ownSecret)).body, { status: "prompted" })
      yield* promise(() => receiver.waitForKeys(4, 30_000))
      assert.deepInclude(receiver.received[3]!.body as object, { text: "echo: plan [answered: no, blue]" })

      const shown = [
        yield* http("GET", `${gateway.url}/diagnostics`, undefined, undefined, gateway.admin),
        yield* http("GET", `${gateway.url}/metrics`, undefined, undefined, gateway.admin),
        yield* http("GET", `${url}/api/channels/bindings`, admin)
      ].map((r) => typeof r.body === "string" ? r.body : JSON.stringify(r.body))
      for (const text of shown) assert.notInclude(text, ownSecret)
      yield* gateway.stop
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("a refused bot token shows on the binding as auth_required (redacted detail), and active again once it works", () =>
    Effect.gen(function*() {
      const telegram = new FakeTelegram(TG_TOKEN)
      yield* promise(() => telegram.start())
      yield* Effect.addFinalizer(() => promise(() => telegram.stop()))
      const { token: admin, url } = yield* orgAdmin
      const binding = yield* createBinding(url, admin, { providerKind: "telegram", providerId: "tg", externalTarget: "3003" })
      const gatewayToken = yield* issueGatewayToken(url, admin, [binding.id])
      const providers = (tokenRef: string) => [{ id: "tg", kind: "telegram", botTokenRef: tokenRef, apiRoot: telegram.apiRoot, timeoutMs: 2_000 }]
      const status = Effect.map(http("GET", `${url}/api/channels/bindings/${binding.id}`, admin), (r) => r.body.binding as { status: string; statusDetail: string | null })
      const wrong = yield* startGateway(url, gatewayToken, providers("env:RT_WRONG"), { RT_WRONG: "123:canary-rotated-away-token" })
      const refused = yield* until("auth_required", Effect.map(status, (b) => (b.status === "auth_required" ? b : undefined)))
      assert.include(refused.statusDetail ?? "", "401")
      assert.notInclude(JSON.stringify(refused), "canary-rotated-away-token")
      yield* wrong.stop
      // The rotated credential: a restarted gateway probes it and reports the binding active again.
      const fixed = yield* startGateway(url, gatewayToken, providers("env:RT_TG"), env)
      yield* until("active again", Effect.map(status, (b) => (b.status === "active" ? true : undefined)))
      yield* fixed.stop
    }))
})
