import type { AddressInfo } from "node:net"
import { SMTPServer } from "smtp-server"

export interface ReceivedMail {
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly idempotencyKey: string | undefined
  readonly subject: string | undefined
  readonly raw: string
  readonly at: number
}

/** Makes the receiver refuse the next message with an SMTP reply code (4xx transient, 5xx permanent). */
export interface SmtpFault {
  readonly responseCode: number
  readonly message: string
}

const header = (raw: string, name: string): string | undefined => {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? ""
  const match = new RegExp(`^${name}:\\s*(.*)$`, "im").exec(head)
  return match?.[1]?.trim()
}

/** A real SMTP server (the `smtp-server` package) on loopback, plain text, optional AUTH with one user. */
export class SmtpReceiver {
  readonly mails: Array<ReceivedMail> = []
  private readonly faults: Array<SmtpFault> = []
  private readonly waiters = new Set<() => void>()
  private server: SMTPServer | undefined
  port = 0

  private readonly credentials: { readonly user: string; readonly password: string } | undefined

  constructor(credentials?: { readonly user: string; readonly password: string }) {
    this.credentials = credentials
  }

  async start(): Promise<this> {
    const credentials = this.credentials
    const server = new SMTPServer({
      secure: false,
      disabledCommands: credentials === undefined ? ["STARTTLS", "AUTH"] : ["STARTTLS"],
      allowInsecureAuth: true,
      authOptional: credentials === undefined,
      logger: false,
      onAuth(auth, _session, callback) {
        if (credentials !== undefined && auth.username === credentials.user && auth.password === credentials.password) {
          return callback(null, { user: auth.username })
        }
        return callback(new Error("Invalid username or password"))
      },
      onData: (stream, session, callback) => {
        const chunks: Array<Buffer> = []
        stream.on("data", (chunk: Buffer) => chunks.push(chunk))
        stream.on("end", () => {
          const fault = this.faults.shift()
          if (fault !== undefined) {
            const error = new Error(fault.message) as Error & { responseCode: number }
            error.responseCode = fault.responseCode
            return callback(error)
          }
          const raw = Buffer.concat(chunks).toString("utf8")
          this.mails.push({
            from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            idempotencyKey: header(raw, "X-Open-Cowork-Idempotency-Key"),
            subject: header(raw, "Subject"),
            raw,
            at: Date.now()
          })
          for (const waiter of [...this.waiters]) waiter()
          callback()
        })
      }
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    this.server = server
    this.port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port
    return this
  }

  inject(fault: SmtpFault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push(fault)
  }

  waitForMails(count: number, timeoutMs = 30_000): Promise<void> {
    if (this.mails.length >= count) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.mails.length < count) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`timed out waiting for ${count} mails`))
      }, timeoutMs)
      this.waiters.add(check)
    })
  }

  async stop(): Promise<void> {
    const server = this.server
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
