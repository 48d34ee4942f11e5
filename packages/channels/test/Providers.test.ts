import {
  InboundSignatures,
  makeEmailProvider,
  makeProviders,
  makeSlackProvider,
  makeTelegramProvider,
  makeWebhookProvider,
  type OutboundMessage,
  slackBlocks,
  ProviderConfigError
} from "@cowork/channels"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { FakeSlack } from "./support/FakeSlack.ts"
import { FakeTelegram } from "./support/FakeTelegram.ts"
import { SmtpReceiver } from "./support/SmtpReceiver.ts"
import { WebhookReceiver } from "./support/WebhookReceiver.ts"

const message = (target: string, key = `dlv-${Math.random().toString(36).slice(2)}`): OutboundMessage => ({
  idempotencyKey: key,
  target,
  text: "echo: hello",
  eventType: "assistant.message"
})

const TG_TOKEN = "123456:canary-telegram-token-ABCDEF"
const SLACK_TOKEN = "xoxb-canary-slack-token"

describe("Telegram provider (grammY against a fake Bot API)", () => {
  const fake = new FakeTelegram(TG_TOKEN)
  beforeAll(() => fake.start())
  afterAll(() => fake.stop())
  const provider = () => makeTelegramProvider({ id: "tg", botToken: TG_TOKEN, webhookSecret: "tg-hook-secret", apiRoot: fake.apiRoot, timeoutMs: 1_000 })

  it("sends, and maps 429 + retry_after, 500, a timeout, a missing chat and a bad token to the feed's acks", async () => {
    const tg = provider()
    assert.deepInclude(await Effect.runPromise(tg.send(message("1001"))), { _tag: "Sent" })
    assert.deepInclude(fake.sends.at(-1), { chatId: "1001", text: "echo: hello" })

    fake.inject({ kind: "status", status: 429, retryAfterSeconds: 7 })
    assert.deepInclude(await Effect.runPromise(tg.send(message("1001"))), { _tag: "Failed", retryAfterMs: 7_000, status: 429 })
    fake.inject({ kind: "status", status: 500 })
    assert.deepInclude(await Effect.runPromise(tg.send(message("1001"))), { _tag: "Failed", status: 500 })
    fake.inject({ kind: "hang" })
    const timedOut = await Effect.runPromise(tg.send(message("1001")))
    assert.strictEqual(timedOut._tag, "Failed")
    assert.deepInclude(await Effect.runPromise(tg.send(message("404"))), { _tag: "Dead", status: 400, authFailed: false })

    const wrong = makeTelegramProvider({ id: "tg", botToken: "999:wrong-token", apiRoot: fake.apiRoot, timeoutMs: 1_000 })
    const refused = await Effect.runPromise(wrong.send(message("1001")))
    assert.deepInclude(refused, { _tag: "Dead", status: 401, authFailed: true })
    assert.deepInclude(await Effect.runPromise(wrong.probe), { _tag: "Dead" })
    assert.deepInclude(await Effect.runPromise(tg.probe), { _tag: "Sent" })
    for (const outcome of [refused, timedOut]) assert.notInclude(JSON.stringify(outcome), "canary-telegram-token")
  })

  it("accepts an update only with the secret token header, and parses messages and answer buttons", async () => {
    const tg = provider()
    const body = Buffer.from(JSON.stringify({ update_id: 77, message: { message_id: 5, chat: { id: 1001 }, from: { id: 555, is_bot: false }, text: "hi" } }))
    const ok = await Effect.runPromise(tg.verifyInbound!({ headers: { [InboundSignatures.TELEGRAM_SECRET_HEADER]: "tg-hook-secret" }, rawBody: body, nowMs: Date.now() }))
    assert.deepStrictEqual(ok.parse, { _tag: "Message", message: { providerEventId: "77", externalTarget: "1001", externalThreadId: undefined, externalUserId: "555", text: "hi" } })
    const bad = await Effect.runPromiseExit(tg.verifyInbound!({ headers: { [InboundSignatures.TELEGRAM_SECRET_HEADER]: "nope" }, rawBody: body, nowMs: Date.now() }))
    assert.isTrue(Exit.isFailure(bad))
    const missing = await Effect.runPromiseExit(tg.verifyInbound!({ headers: {}, rawBody: body, nowMs: Date.now() }))
    assert.isTrue(Exit.isFailure(missing))
    const button = Buffer.from(JSON.stringify({ update_id: 78, callback_query: { id: "cb", from: { id: 555 }, data: "answer:per_1:once", message: { chat: { id: 1001 } } } }))
    const answered = await Effect.runPromise(tg.verifyInbound!({ headers: { [InboundSignatures.TELEGRAM_SECRET_HEADER]: "tg-hook-secret" }, rawBody: button, nowMs: Date.now() }))
    assert.deepInclude(answered.parse, { _tag: "Message" })
    if (answered.parse._tag === "Message") assert.deepStrictEqual(answered.parse.message.answer, { requestId: "per_1", value: "once" })
  })

  it("sends one keyboard row per question; reads a press with its topic and keyboard; answers every press and shows its outcome on the message", async () => {
    const tg = provider()
    const buttons = [
      { label: "1: yes", requestId: "que_7", choice: { question: 0, option: 0, questions: 2 }, row: 0 },
      { label: "1: no", requestId: "que_7", choice: { question: 0, option: 1, questions: 2 }, row: 0 },
      { label: "2: red", requestId: "que_7", choice: { question: 1, option: 0, questions: 2 }, row: 1 },
      { label: "Reject", requestId: "que_7", value: "reject", row: 2 }
    ]
    assert.deepInclude(await Effect.runPromise(tg.send({ ...message("1001"), threadId: "12", eventType: "question.asked", buttons })), { _tag: "Sent" })
    const asked = fake.sends.at(-1)!
    assert.deepStrictEqual(asked.rows, [
      [["1: yes", "pick:que_7:0:0-"], ["1: no", "pick:que_7:0:1-"]],
      [["2: red", "pick:que_7:1:-0"]],
      [["Reject", "answer:que_7:reject"]]
    ])
    const keyboard = { inline_keyboard: asked.rows.map((row) => row.map(([text, data]) => ({ text, callback_data: data }))) }
    const pressBody = (data: string, callbackId = "cb-7") =>
      Buffer.from(JSON.stringify({
        update_id: 90,
        callback_query: { id: callbackId, from: { id: 555 }, data, message: { message_id: asked.messageId, message_thread_id: 12, chat: { id: 1001 }, text: asked.text, reply_markup: keyboard } }
      }))
    const verified = await Effect.runPromise(tg.verifyInbound!({ headers: { [InboundSignatures.TELEGRAM_SECRET_HEADER]: "tg-hook-secret" }, rawBody: pressBody("pick:que_7:0:1-"), nowMs: Date.now() }))
    assert.strictEqual(verified.parse._tag, "Message")
    if (verified.parse._tag !== "Message") return
    const pressed = verified.parse.message
    assert.deepInclude(pressed, { externalTarget: "1001", externalThreadId: "12", externalUserId: "555", answer: { requestId: "que_7", question: 0, choices: [1, undefined] } })
    assert.deepStrictEqual(pressed.pressedMessage, {
      id: String(asked.messageId),
      text: asked.text,
      callbackId: "cb-7",
      buttons: asked.rows.map((row) => row.map(([label, data]) => ({ label, data }))),
      by: undefined
    })
    const press = { target: "1001", userId: "555", message: pressed.pressedMessage! }

    // A partial selection: the callback is answered and the keyboard replaced; the text stays.
    const rows = [[{ label: "✓ 1: no", data: "pick:que_7:0:1-" }], [{ label: "2: red", data: "pick:que_7:1:10" }]]
    await Effect.runPromise(tg.acknowledge!(press, { _tag: "Selected", buttons: rows, remaining: 1 }))
    assert.deepStrictEqual(fake.callbackAnswers.at(-1), { callbackId: "cb-7", text: "Noted. 1 more to choose." })
    assert.deepInclude(fake.edits.at(-1), { method: "editMessageReplyMarkup", chatId: "1001", messageId: asked.messageId, text: undefined })
    assert.deepStrictEqual(fake.edits.at(-1)!.rows, [[["✓ 1: no", "pick:que_7:0:1-"]], [["2: red", "pick:que_7:1:10"]]])

    // Answered: the keyboard gives way to the answer and who gave it.
    await Effect.runPromise(tg.acknowledge!(press, { _tag: "Answered", summary: "1: no, 2: red" }))
    assert.deepStrictEqual(fake.callbackAnswers.at(-1), { callbackId: "cb-7", text: "Answered: 1: no, 2: red" })
    assert.deepInclude(fake.edits.at(-1), { method: "editMessageText", text: `${asked.text}\n\nAnswered: 1: no, 2: red (by user 555)` })
    await Effect.runPromise(tg.acknowledge!({ ...press, message: { ...press.message, by: "@alice" } }, { _tag: "Answered", summary: "1: no, 2: red" }))
    assert.deepInclude(fake.edits.at(-1), { text: `${asked.text}\n\nAnswered: 1: no, 2: red (by @alice)` })
    assert.deepStrictEqual(fake.edits.at(-1)!.rows, [])

    // Not taken: only the callback is answered. An edit Telegram refuses (or a callback too old) changes nothing.
    const edits = fake.edits.length
    await Effect.runPromise(tg.acknowledge!(press, { _tag: "NotTaken", note: "Already answered." }))
    assert.deepStrictEqual(fake.callbackAnswers.at(-1), { callbackId: "cb-7", text: "Already answered." })
    assert.strictEqual(fake.edits.length, edits)
    await Effect.runPromise(tg.acknowledge!({ ...press, message: { ...press.message, id: "9999" } }, { _tag: "Answered", summary: "x" }))
    assert.strictEqual(fake.edits.length, edits)

    // Data the gateway did not make: ignored, but the press is still answered.
    const forged = await Effect.runPromise(tg.verifyInbound!({ headers: { [InboundSignatures.TELEGRAM_SECRET_HEADER]: "tg-hook-secret" }, rawBody: pressBody("run:rm -rf", "cb-8"), nowMs: Date.now() }))
    assert.strictEqual(forged.parse._tag, "Ignored")
    if (forged.parse._tag === "Ignored") assert.strictEqual(forged.parse.press?.message.callbackId, "cb-8")
  })
})

describe("Slack provider (@slack/web-api against a fake Web API)", () => {
  const fake = new FakeSlack(SLACK_TOKEN)
  beforeAll(() => fake.start())
  afterAll(() => fake.stop())

  it("posts, and maps Retry-After, 5xx, a timeout, channel_not_found and invalid_auth", async () => {
    const slack = makeSlackProvider({ id: "sl", botToken: SLACK_TOKEN, signingSecret: "slack-signing", apiUrl: fake.apiUrl, timeoutMs: 1_000 })
    assert.deepInclude(await Effect.runPromise(slack.send({ ...message("C1"), threadId: "1700000000.000100" })), { _tag: "Sent" })
    assert.deepInclude(fake.posts.at(-1), { channel: "C1", text: "echo: hello", threadTs: "1700000000.000100" })
    fake.inject({ kind: "status", status: 429, retryAfterSeconds: 3 })
    assert.deepInclude(await Effect.runPromise(slack.send(message("C1"))), { _tag: "Failed", retryAfterMs: 3_000 })
    fake.inject({ kind: "status", status: 503 })
    assert.deepInclude(await Effect.runPromise(slack.send(message("C1"))), { _tag: "Failed", status: 503 })
    fake.inject({ kind: "hang" })
    assert.strictEqual((await Effect.runPromise(slack.send(message("C1"))))._tag, "Failed")
    assert.deepInclude(await Effect.runPromise(slack.send(message("C404"))), { _tag: "Dead", authFailed: false })
    const wrong = makeSlackProvider({ id: "sl", botToken: "xoxb-wrong", apiUrl: fake.apiUrl, timeoutMs: 1_000 })
    assert.deepInclude(await Effect.runPromise(wrong.send(message("C1"))), { _tag: "Dead", authFailed: true })
  })

  it("verifies v0 request signatures within 5 minutes and answers the URL challenge", async () => {
    const slack = makeSlackProvider({ id: "sl", botToken: SLACK_TOKEN, signingSecret: "slack-signing", apiUrl: fake.apiUrl, timeoutMs: 1_000 })
    const now = Date.now()
    const ts = String(Math.floor(now / 1000))
    const body = JSON.stringify({ type: "event_callback", event_id: "Ev1", event: { type: "message", channel: "C1", user: "U9", text: "hello", ts: "1.1" } })
    const headers = (signature: string, timestamp = ts) => ({
      [InboundSignatures.SLACK_TIMESTAMP_HEADER]: timestamp,
      [InboundSignatures.SLACK_SIGNATURE_HEADER]: signature
    })
    const ok = await Effect.runPromise(slack.verifyInbound!({ headers: headers(InboundSignatures.signSlack("slack-signing", ts, body)), rawBody: Buffer.from(body), nowMs: now }))
    assert.deepInclude(ok.parse, { _tag: "Message" })
    assert.isString(ok.replayKey)
    const stale = String(Math.floor(now / 1000) - 301)
    const staleExit = await Effect.runPromiseExit(slack.verifyInbound!({ headers: headers(InboundSignatures.signSlack("slack-signing", stale, body), stale), rawBody: Buffer.from(body), nowMs: now }))
    assert.isTrue(Exit.isFailure(staleExit) && JSON.stringify(staleExit.cause).includes("stale_timestamp"))
    const forged = await Effect.runPromiseExit(slack.verifyInbound!({ headers: headers(InboundSignatures.signSlack("other", ts, body)), rawBody: Buffer.from(body), nowMs: now }))
    assert.isTrue(Exit.isFailure(forged) && JSON.stringify(forged.cause).includes("bad_signature"))
    const challenge = JSON.stringify({ type: "url_verification", challenge: "abc" })
    const answered = await Effect.runPromise(slack.verifyInbound!({ headers: headers(InboundSignatures.signSlack("slack-signing", ts, challenge)), rawBody: Buffer.from(challenge), nowMs: now }))
    assert.deepStrictEqual(answered.parse, { _tag: "Challenge", challenge: "abc" })
  })

  it("posts answer buttons as Block Kit and reads a pressed button from a signed interactivity payload", async () => {
    const slack = makeSlackProvider({ id: "sl", botToken: SLACK_TOKEN, signingSecret: "slack-signing", apiUrl: fake.apiUrl, timeoutMs: 1_000 })
    const buttons = [{ label: "Allow once", requestId: "per_9", value: "once" }, { label: "Reject", requestId: "per_9", value: "reject" }]
    assert.deepInclude(await Effect.runPromise(slack.send({ ...message("C1"), eventType: "permission.requested", buttons })), { _tag: "Sent" })
    assert.deepStrictEqual(fake.posts.at(-1)!.buttons, [["Allow once", "answer:per_9:once"], ["Reject", "answer:per_9:reject"]])
    const now = Date.now()
    const ts = String(Math.floor(now / 1000))
    const interaction = (payload: unknown) => `payload=${encodeURIComponent(JSON.stringify(payload))}`
    const verify = (body: string, secret = "slack-signing") =>
      Effect.runPromiseExit(slack.verifyInbound!({
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          [InboundSignatures.SLACK_TIMESTAMP_HEADER]: ts,
          [InboundSignatures.SLACK_SIGNATURE_HEADER]: InboundSignatures.signSlack(secret, ts, body)
        },
        rawBody: Buffer.from(body),
        nowMs: now
      }))
    const pressed = interaction({
      type: "block_actions", trigger_id: "trig-1", user: { id: "U9" }, channel: { id: "C1" },
      container: { channel_id: "C1", message_ts: "2.2", thread_ts: "1.1" }, message: { ts: "2.2", thread_ts: "1.1" },
      actions: [{ action_id: "answer_0", value: "answer:per_9:once", action_ts: "3.3" }]
    })
    const ok = await verify(pressed)
    assert.isTrue(Exit.isSuccess(ok))
    if (Exit.isSuccess(ok)) {
      assert.deepStrictEqual(ok.value.parse, {
        _tag: "Message",
        message: {
          providerEventId: "slack-action:trig-1",
          externalTarget: "C1",
          externalThreadId: "1.1",
          externalUserId: "U9",
          text: "once",
          answer: { requestId: "per_9", value: "once" },
          pressedMessage: { id: "2.2", text: "", buttons: undefined }
        }
      })
    }
    const forged = await verify(pressed, "other")
    assert.isTrue(Exit.isFailure(forged) && JSON.stringify(forged.cause).includes("bad_signature"))
    const other = await verify(interaction({ type: "block_actions", trigger_id: "t", user: { id: "U9" }, channel: { id: "C1" }, actions: [{ value: "something else" }] }))
    assert.isTrue(Exit.isSuccess(other) && other.value.parse._tag === "Ignored")
    const garbled = await verify("payload=%7Bnot-json")
    assert.isTrue(Exit.isFailure(garbled) && JSON.stringify(garbled.cause).includes("bad_request"))
  })

  it("posts one actions block per question; a partial selection re-renders the buttons, an answer replaces them", async () => {
    const slack = makeSlackProvider({ id: "sl", botToken: SLACK_TOKEN, signingSecret: "slack-signing", apiUrl: fake.apiUrl, timeoutMs: 1_000 })
    const buttons = [
      { label: "1: yes", requestId: "que_5", choice: { question: 0, option: 0, questions: 2 }, row: 0 },
      { label: "2: red", requestId: "que_5", choice: { question: 1, option: 0, questions: 2 }, row: 1 },
      { label: "Reject", requestId: "que_5", value: "reject", row: 2 }
    ]
    assert.deepInclude(await Effect.runPromise(slack.send({ ...message("C1"), eventType: "question.asked", buttons })), { _tag: "Sent" })
    const asked = fake.posts.at(-1)!
    assert.deepStrictEqual(asked.buttons, [["1: yes", "pick:que_5:0:0-"], ["2: red", "pick:que_5:1:-0"], ["Reject", "answer:que_5:reject"]])
    const blocks = slackBlocks({ ...message("C1"), buttons })!
    assert.deepStrictEqual(blocks.map((b) => (b as { block_id?: string }).block_id), [undefined, "cowork_answer", "cowork_answer_1", "cowork_answer_2"])

    // The interaction carries the message's blocks: the press reads its buttons from them.
    const now = Date.now()
    const ts = String(Math.floor(now / 1000))
    const body = `payload=${encodeURIComponent(JSON.stringify({
      type: "block_actions", trigger_id: "trig-5", user: { id: "U9" }, channel: { id: "C1" },
      message: { ts: asked.ts, text: asked.text, blocks },
      actions: [{ action_id: "answer_0", value: "pick:que_5:0:0-" }]
    }))}`
    const verified = await Effect.runPromise(slack.verifyInbound!({
      headers: { "content-type": "application/x-www-form-urlencoded", [InboundSignatures.SLACK_TIMESTAMP_HEADER]: ts, [InboundSignatures.SLACK_SIGNATURE_HEADER]: InboundSignatures.signSlack("slack-signing", ts, body) },
      rawBody: Buffer.from(body),
      nowMs: now
    }))
    assert.strictEqual(verified.parse._tag, "Message")
    if (verified.parse._tag !== "Message") return
    const pressed = verified.parse.message.pressedMessage!
    assert.deepStrictEqual(pressed.buttons, [[{ label: "1: yes", data: "pick:que_5:0:0-" }], [{ label: "2: red", data: "pick:que_5:1:-0" }], [{ label: "Reject", data: "answer:que_5:reject" }]])
    const press = { target: "C1", userId: "U9", message: pressed }
    await Effect.runPromise(slack.acknowledge!(press, { _tag: "Selected", buttons: [[{ label: "✓ 1: yes", data: "pick:que_5:0:0-" }], [{ label: "2: red", data: "pick:que_5:1:00" }]], remaining: 1 }))
    assert.deepInclude(fake.updates.at(-1), { channel: "C1", ts: asked.ts, text: asked.text })
    assert.deepStrictEqual(fake.updates.at(-1)!.buttons, [["✓ 1: yes", "pick:que_5:0:0-"], ["2: red", "pick:que_5:1:00"]])
    await Effect.runPromise(slack.acknowledge!(press, { _tag: "Answered", summary: "1: yes, 2: red" }))
    assert.deepInclude(fake.updates.at(-1), { text: `${asked.text}\nAnswered 1: yes, 2: red (<@U9>)` })
    assert.deepStrictEqual(fake.updates.at(-1)!.buttons, [])
    const updates = fake.updates.length
    // A press not taken: the message stays as it is, and only the presser is told why (in the message's thread).
    await Effect.runPromise(slack.acknowledge!({ ...press, threadId: "1700000000.000100" }, { _tag: "NotTaken", note: "Already answered." }))
    assert.strictEqual(fake.updates.length, updates)
    assert.deepStrictEqual(fake.ephemerals, [{ channel: "C1", user: "U9", text: "Already answered.", threadTs: "1700000000.000100" }])
    // Answered differently by another user first: named as a mention; an id that is not a Slack user id is left out.
    await Effect.runPromise(slack.acknowledge!(press, { _tag: "NotTaken", note: "Already answered.", answeredBy: "U42" }))
    await Effect.runPromise(slack.acknowledge!(press, { _tag: "NotTaken", note: "Already answered.", answeredBy: "<!channel>" }))
    assert.deepStrictEqual(fake.ephemerals.slice(1).map((e) => e.text), ["Already answered by <@U42>.", "Already answered."])
  })
})

describe("Email provider (nodemailer to a real SMTP receiver)", () => {
  const smtp = new SmtpReceiver({ user: "bot", password: "smtp-canary-password" })
  beforeAll(() => smtp.start())
  afterAll(() => smtp.stop())

  it("delivers with the idempotency key header; 4xx is failed, 5xx dead, a bad password a credential problem", async () => {
    const settings = { id: "mail", host: "127.0.0.1", port: smtp.port, secure: false, ignoreTls: true, user: "bot", password: "smtp-canary-password", from: "bot@cowork.test", timeoutMs: 2_000 }
    const mail = makeEmailProvider(settings)
    assert.deepInclude(await Effect.runPromise(mail.send(message("alice@example.com", "dlv-email-1"))), { _tag: "Sent" })
    assert.deepInclude(smtp.mails.at(-1), { idempotencyKey: "dlv-email-1" })
    assert.deepStrictEqual(smtp.mails.at(-1)?.to, ["alice@example.com"])
    smtp.inject({ responseCode: 451, message: "try later" })
    assert.deepInclude(await Effect.runPromise(mail.send(message("alice@example.com"))), { _tag: "Failed", status: 451 })
    smtp.inject({ responseCode: 550, message: "no such mailbox" })
    assert.deepInclude(await Effect.runPromise(mail.send(message("alice@example.com"))), { _tag: "Dead", status: 550 })
    const wrong = makeEmailProvider({ ...settings, password: "wrong" })
    const refused = await Effect.runPromise(wrong.send(message("alice@example.com")))
    assert.deepInclude(refused, { _tag: "Dead", authFailed: true })
    assert.notInclude(JSON.stringify(refused), "alice@example.com")
    await Effect.runPromise(mail.close)
    await Effect.runPromise(wrong.close)
  })

  it("with an inbound secret: reply instructions under a question, and a relay's signed mail becomes the reply's new text", async () => {
    const settings = { id: "mail", host: "127.0.0.1", port: smtp.port, secure: false, ignoreTls: true, user: "bot", password: "smtp-canary-password", from: "bot@cowork.test", timeoutMs: 2_000 }
    const mail = makeEmailProvider({ ...settings, inboundSecret: "relay-secret" })
    const buttons = [{ label: "yes", requestId: "que_1", value: "yes" }, { label: "no", requestId: "que_1", value: "no" }, { label: "Reject", requestId: "que_1", value: "reject" }]
    assert.deepInclude(await Effect.runPromise(mail.send({ ...message("alice@example.com", "dlv-q-1"), eventType: "question.asked", buttons })), { _tag: "Sent" })
    assert.include(smtp.mails.at(-1)!.raw, "Reply to this email with your answer (yes / no)")
    const picks = [0, 1].map((question) => ({ label: `${question + 1}: yes`, requestId: "que_2", choice: { question, option: 0, questions: 2 }, row: question }))
    assert.deepInclude(await Effect.runPromise(mail.send({ ...message("alice@example.com", "dlv-q-2"), eventType: "question.asked", buttons: picks })), { _tag: "Sent" })
    assert.include(smtp.mails.at(-1)!.raw, "Reply to this email with one line per question, in order")
    assert.isUndefined(makeEmailProvider(settings).verifyInbound, "outbound only without an inbound secret")
    const now = Date.now()
    const ts = String(Math.floor(now / 1000))
    const verify = (payload: unknown, secret = "relay-secret") => {
      const body = JSON.stringify(payload)
      return Effect.runPromiseExit(mail.verifyInbound!({
        headers: {
          [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts,
          [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, ts, body)
        },
        rawBody: Buffer.from(body),
        nowMs: now
      }))
    }
    const reply = { messageId: "<abc@mail.example.com>", from: "Alice <Alice@Example.com>", text: "yes please\r\n\r\nOn Mon, 30 Nov 2026 Bot wrote:\r\n> The session asks" }
    const ok = await verify(reply)
    assert.isTrue(Exit.isSuccess(ok))
    if (Exit.isSuccess(ok)) {
      assert.deepStrictEqual(ok.value.parse, {
        _tag: "Message",
        message: { providerEventId: "<abc@mail.example.com>", externalTarget: "alice@example.com", externalUserId: "alice@example.com", text: "yes please" }
      })
    }
    const forged = await verify(reply, "wrong")
    assert.isTrue(Exit.isFailure(forged) && JSON.stringify(forged.cause).includes("bad_signature"))
    // A binding's own inbound secret is checked in place of the provider's.
    const own = (signedWith: string) => {
      const body = JSON.stringify(reply)
      return Effect.runPromiseExit(mail.verifyInbound!({
        headers: { [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: ts, [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(signedWith, ts, body) },
        rawBody: Buffer.from(body),
        nowMs: now
      }, "binding-secret"))
    }
    assert.isTrue(Exit.isSuccess(await own("binding-secret")))
    assert.isTrue(Exit.isFailure(await own("relay-secret")), "the provider's secret does not pass for a binding's own")
    const noFrom = await verify({ messageId: "<x@y>", from: "nobody", text: "hi" })
    assert.isTrue(Exit.isFailure(noFrom) && JSON.stringify(noFrom.cause).includes("from is required"))
    const quoteOnly = await verify({ messageId: "<q@y>", from: "a@b.c", text: "> only the quote" })
    assert.isTrue(Exit.isSuccess(quoteOnly) && quoteOnly.value.parse._tag === "Ignored")
    await Effect.runPromise(mail.close)
  })
})

describe("Webhook provider", () => {
  const receiver = new WebhookReceiver("hook-out-secret")
  beforeAll(() => receiver.start())
  afterAll(() => receiver.stop())

  it("posts signed JSON with the idempotency key; maps 429 Retry-After, 5xx, timeouts and 4xx", async () => {
    const loopback = new Set(["127.0.0.1"])
    const refusing = makeWebhookProvider({ id: "hooks", outboundSecret: "hook-out-secret", timeoutMs: 1_000 })
    assert.deepInclude(await Effect.runPromise(refusing.send(message(receiver.url, "dlv-w-0"))), { _tag: "Dead", targetRefused: true })
    assert.strictEqual(receiver.received.length, 0, "a loopback target is refused without the operator's allow-list")
    await Effect.runPromise(refusing.close)
    const hook = makeWebhookProvider({ id: "hooks", inboundSecret: "hook-in-secret", outboundSecret: "hook-out-secret", timeoutMs: 1_000, allowedHosts: loopback })
    assert.deepInclude(await Effect.runPromise(hook.send(message(receiver.url, "dlv-w-1"))), { _tag: "Sent" })
    assert.deepInclude(receiver.received.at(-1), { idempotencyKey: "dlv-w-1", signatureValid: true })
    receiver.inject({ kind: "status", status: 429, retryAfterSeconds: 2 })
    assert.deepInclude(await Effect.runPromise(hook.send(message(receiver.url))), { _tag: "Failed", retryAfterMs: 2_000 })
    receiver.inject({ kind: "status", status: 502 })
    assert.deepInclude(await Effect.runPromise(hook.send(message(receiver.url))), { _tag: "Failed", status: 502 })
    receiver.inject({ kind: "hang" })
    assert.strictEqual((await Effect.runPromise(hook.send(message(receiver.url))))._tag, "Failed")
    receiver.inject({ kind: "status", status: 404 })
    assert.deepInclude(await Effect.runPromise(hook.send(message(receiver.url))), { _tag: "Dead", status: 404 })
    assert.deepInclude(await Effect.runPromise(hook.send(message("ftp://example.com/x"))), { _tag: "Dead" })
  })

  it("verifies inbound v1 signatures (±5 min) and requires the event fields", async () => {
    const hook = makeWebhookProvider({ id: "hooks", inboundSecret: "hook-in-secret", timeoutMs: 1_000 })
    const now = Date.now()
    const ts = String(Math.floor(now / 1000))
    const body = JSON.stringify({ eventId: "ev-1", target: "room-1", userId: "u-1", text: "hello" })
    const sign = (timestamp: string, payload: string, secret = "hook-in-secret") => ({
      [InboundSignatures.WEBHOOK_TIMESTAMP_HEADER]: timestamp,
      [InboundSignatures.WEBHOOK_SIGNATURE_HEADER]: InboundSignatures.signWebhook(secret, timestamp, payload)
    })
    const ok = await Effect.runPromise(hook.verifyInbound!({ headers: sign(ts, body), rawBody: Buffer.from(body), nowMs: now }))
    assert.deepInclude(ok.parse, { _tag: "Message" })
    assert.strictEqual(ok.replayKey, InboundSignatures.replayKey("hooks", sign(ts, body)[InboundSignatures.WEBHOOK_SIGNATURE_HEADER]))
    const reasons = async (headers: Record<string, string>, payload = body) => {
      const exit = await Effect.runPromiseExit(hook.verifyInbound!({ headers, rawBody: Buffer.from(payload), nowMs: now }))
      return Exit.isFailure(exit) ? JSON.stringify(exit.cause) : "accepted"
    }
    assert.include(await reasons({}), "missing_signature")
    const old = String(Math.floor(now / 1000) - 301)
    assert.include(await reasons(sign(old, body)), "stale_timestamp")
    assert.include(await reasons(sign(ts, body, "wrong")), "bad_signature")
    const noText = JSON.stringify({ eventId: "ev-2", target: "room-1", userId: "u-1" })
    assert.include(await reasons(sign(ts, noText), noText), "text is required")
    // An answer: a value, or one option index per question; anything else is a 400 naming what it needs.
    const answered = async (answer: unknown) => {
      const payload = JSON.stringify({ eventId: "ev-3", target: "room-1", userId: "u-1", text: "answer", answer })
      const exit = await Effect.runPromiseExit(hook.verifyInbound!({ headers: sign(ts, payload), rawBody: Buffer.from(payload), nowMs: now }))
      return Exit.isSuccess(exit) && exit.value.parse._tag === "Message" ? exit.value.parse.message.answer : Exit.isFailure(exit) ? JSON.stringify(exit.cause) : undefined
    }
    assert.deepStrictEqual(await answered({ requestId: "per_1", value: "once" }), { requestId: "per_1", value: "once" })
    assert.deepStrictEqual(await answered({ requestId: "que_1", choices: [1, 0] }), { requestId: "que_1", question: 0, choices: [1, 0] })
    for (const bad of [{ requestId: "que_1" }, { requestId: "que_1", choices: [36] }, { requestId: "que_1", choices: [] }, { value: "once" }, { requestId: "que_1", choices: [0.5] }]) {
      assert.include(String(await answered(bad)), "answer needs requestId", JSON.stringify(bad))
    }
  })
})

describe("Provider configuration", () => {
  it("reads credentials only from env:/file: refs and names the field that is wrong", () => {
    const env = { TG: "123:tok", HOOK: "s3cret" }
    const providers = makeProviders(JSON.stringify([
      { id: "tg", kind: "telegram", botTokenRef: "env:TG", apiRoot: "http://127.0.0.1:1" },
      { id: "hooks", kind: "webhook", inboundSecretRef: "env:HOOK" }
    ]), env)
    assert.deepStrictEqual(providers.map((p) => [p.config.id, p.config.kind]), [["tg", "telegram"], ["hooks", "webhook"]])
    assert.notInclude(JSON.stringify(providers.map((p) => p.config)), "123:tok")
    const fails = (json: unknown, fragment: string) =>
      assert.throws(() => makeProviders(JSON.stringify(json), env), ProviderConfigError, fragment)
    fails([{ id: "tg", kind: "telegram", botTokenRef: "123:inline" }], "botTokenRef: a credential must be a reference")
    fails([{ id: "tg", kind: "telegram", botTokenRef: "env:MISSING" }], "MISSING is not set")
    fails([{ id: "x", kind: "sms" }], "[0].kind must be one of")
    fails([{ id: "a", kind: "webhook" }, { id: "a", kind: "webhook" }], `[1].id "a" is used twice`)
    fails([{ id: "Bad Id", kind: "webhook" }], "[0].id must match")
    // A provider's (shared) credential outside every org's namespace: an org's bindings could otherwise name it.
    const inNamespace = (ref: string, extra: Record<string, string> = {}) =>
      assert.throws(() => makeProviders(JSON.stringify([{ id: "tg", kind: "telegram", botTokenRef: ref }]), { ...env, ...extra }), ProviderConfigError, "per-org credential namespace")
    inNamespace("env:OPEN_COWORK_GATEWAY_CRED_ORG_5FA__TG", { OPEN_COWORK_GATEWAY_CRED_ORG_5FA__TG: "123:tok" })
    inNamespace("file:/run/cowork-credentials/org_a/tg", { OPEN_COWORK_GATEWAY_CREDENTIALS_DIR: "/run/cowork-credentials" })
    inNamespace("file:///run/cowork-credentials/../cowork-credentials/org_a/tg", { OPEN_COWORK_GATEWAY_CREDENTIALS_DIR: "/run/cowork-credentials/" })
    // A sibling directory whose name merely begins like it is not inside it (the file is then simply missing here).
    assert.throws(() =>
      makeProviders(JSON.stringify([{ id: "tg", kind: "telegram", botTokenRef: "file:/run/cowork-credentials-shared/tg" }]), {
        ...env,
        OPEN_COWORK_GATEWAY_CREDENTIALS_DIR: "/run/cowork-credentials"
      }), ProviderConfigError, "cannot read")
  })
})
