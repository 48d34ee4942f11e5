import { Effect } from "effect"
import * as Nodemailer from "nodemailer"
import {
  callProvider,
  type ChannelProvider,
  dead,
  failed,
  type InboundParse,
  InboundRefused,
  type InboundRequest,
  type OutboundMessage,
  sent,
  type VerifiedInbound
} from "./ChannelProvider.ts"
import { errorText, scrub } from "./Scrub.ts"
import { verifySignedJson } from "./WebhookProvider.ts"

export interface EmailSettings {
  readonly id: string
  readonly host: string
  readonly port: number
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  readonly secure: boolean
  readonly user?: string | undefined
  readonly password?: string | undefined
  /** The `From:` address. */
  readonly from: string
  readonly subject?: string | undefined
  readonly timeoutMs: number
  /** Plain SMTP without STARTTLS (a local relay or a test receiver only). */
  readonly ignoreTls?: boolean | undefined
  /**
   * Verifies the inbound-mail relay's signed POSTs (`POST /webhooks/:providerId`, the generic `v1=` scheme): a reply
   * by mail becomes a prompt, or the answer to the question / permission the session waits on. Unset: outbound only.
   */
  readonly inboundSecret?: string | undefined
}

interface InboundMail {
  readonly messageId?: unknown
  readonly from?: unknown
  readonly text?: unknown
}

/** `Alice <alice@example.com>` or `alice@example.com` → `alice@example.com` (lower-cased), or undefined. */
const mailAddress = (value: unknown): string | undefined => {
  if (typeof value !== "string" || value.length > 500) return undefined
  const address = (/<([^<>\s]+@[^<>\s]+)>/.exec(value)?.[1] ?? value).trim().toLowerCase()
  return /^[^\s@<>]+@[^\s@<>]+$/.test(address) ? address : undefined
}

/** The new text of a reply: the lines before the quoted original (`> …`, `On … wrote:`, `-----Original Message-----`). */
const replyText = (text: string): string => {
  const kept: Array<string> = []
  for (const line of text.replace(/\r\n/g, "\n").split("\n")) {
    if (/^\s*>/.test(line) || /^On .{1,400}wrote:\s*$/.test(line.trim()) || /^-{2,}\s*Original Message\s*-{2,}$/i.test(line.trim())) break
    kept.push(line)
  }
  return kept.join("\n").trim()
}

/**
 * The relay's JSON `{messageId, from, text}` (the mail's Message-ID is the provider event id, so a relay's retry
 * prompts once; the sender's address is the binding's target and the thread).
 */
const parseInboundMail = (body: InboundMail): Effect.Effect<InboundParse, InboundRefused> =>
  Effect.gen(function*() {
    const messageId = typeof body.messageId === "string" && body.messageId !== "" && body.messageId.length <= 200 ? body.messageId : undefined
    const from = mailAddress(body.from)
    if (messageId === undefined || from === undefined || typeof body.text !== "string") {
      const field = messageId === undefined ? "messageId" : from === undefined ? "from" : "text"
      return yield* new InboundRefused({
        reason: "bad_request",
        message: `${field} is required (${field === "from" ? "an email address" : "a string"})`
      })
    }
    const text = replyText(body.text.slice(0, 64_000))
    if (text === "") return { _tag: "Ignored", reason: "no new text in the reply" } satisfies InboundParse
    return { _tag: "Message", message: { providerEventId: messageId, externalTarget: from, externalUserId: from, text } } satisfies InboundParse
  })

/** How to answer by mail, under a question or permission request (only when replies come back in). */
const replyInstructions = (message: OutboundMessage): string => {
  if (message.eventType === "permission.requested") return "Reply to this email with once, always or reject."
  if (message.eventType !== "question.asked") return ""
  if ((message.buttons ?? []).some((button) => (button.choice?.questions ?? 1) > 1)) {
    return "Reply to this email with one line per question, in order; the text above the quoted message is taken."
  }
  const options = (message.buttons ?? []).filter((button) => button.value !== "reject").map((button) => button.label)
  return `Reply to this email with your answer${options.length > 0 ? ` (${options.join(" / ")})` : ""}; the text above the quoted message is taken.`
}

/** Replies go to the binding's address; with an inbound secret, mail replies come back through the relay. SMTP 4xx is transient, 5xx permanent, `EAUTH` a credential problem. */
export const makeEmailProvider = (settings: EmailSettings): ChannelProvider => {
  const transport = Nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: settings.secure,
    ignoreTLS: settings.ignoreTls === true,
    ...(settings.user === undefined ? {} : { auth: { user: settings.user, pass: settings.password ?? "" } }),
    connectionTimeout: settings.timeoutMs,
    greetingTimeout: settings.timeoutMs,
    socketTimeout: settings.timeoutMs,
    logger: false
  })
  const secrets = [settings.password, settings.inboundSecret].filter((secret): secret is string => secret !== undefined)
  const verify = (request: InboundRequest, secret?: string): Effect.Effect<VerifiedInbound, InboundRefused> =>
    Effect.gen(function*() {
      const { body, replayKey } = yield* verifySignedJson(settings.id, secret ?? settings.inboundSecret, request)
      return { parse: yield* parseInboundMail(body as InboundMail), replayKey }
    })
  const classify = (error: unknown) => {
    const smtp = error as { code?: unknown; responseCode?: unknown }
    const text = scrub(`smtp: ${errorText(error)}`, secrets)
    if (smtp.code === "EAUTH") return dead(text, undefined, true)
    if (typeof smtp.responseCode === "number") {
      if (smtp.responseCode >= 500) return dead(text, smtp.responseCode)
      return failed(text, undefined, smtp.responseCode)
    }
    return failed(text)
  }
  return {
    id: settings.id,
    kind: "email",
    ...(settings.inboundSecret === undefined ? {} : { verifyInbound: verify }),
    send: (message: OutboundMessage) =>
      callProvider(
        () =>
          transport.sendMail({
            from: settings.from,
            to: message.target,
            subject: settings.subject ?? (message.eventType === "assistant.message" ? "Reply from your Cowork session" : "Your Cowork session needs an answer"),
            text: settings.inboundSecret === undefined || replyInstructions(message) === ""
              ? message.text
              : `${message.text}\n\n${replyInstructions(message)}`,
            messageId: `<${message.idempotencyKey}@open-cowork.gateway>`,
            headers: { "X-Open-Cowork-Idempotency-Key": message.idempotencyKey }
          }),
        (info) => sent(typeof info.messageId === "string" ? info.messageId : undefined),
        classify
      ),
    probe: callProvider(() => transport.verify(), () => sent(), classify),
    secrets,
    close: Effect.sync(() => transport.close())
  }
}
