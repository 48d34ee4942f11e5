import { Effect } from "effect"
import * as Nodemailer from "nodemailer"
import { type ChannelProvider, dead, failed, type OutboundMessage, sent } from "./ChannelProvider.ts"
import { errorText, scrub } from "./Scrub.ts"

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
}

/** Outbound only: replies go to the binding's address. SMTP 4xx is transient, 5xx permanent, `EAUTH` a credential problem. */
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
  const secrets = settings.password === undefined ? [] : [settings.password]
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
    send: (message: OutboundMessage) =>
      Effect.promise(async () => {
        try {
          const info = await transport.sendMail({
            from: settings.from,
            to: message.target,
            subject: settings.subject ?? (message.eventType === "assistant.message" ? "Reply from your Cowork session" : "Your Cowork session needs an answer"),
            text: message.text,
            messageId: `<${message.idempotencyKey}@open-cowork.gateway>`,
            headers: { "X-Open-Cowork-Idempotency-Key": message.idempotencyKey }
          })
          return sent(typeof info.messageId === "string" ? info.messageId : undefined)
        } catch (error) {
          return classify(error)
        }
      }),
    probe: Effect.promise(async () => {
      try {
        await transport.verify()
        return sent()
      } catch (error) {
        return classify(error)
      }
    }),
    secrets,
    close: Effect.sync(() => transport.close())
  }
}
