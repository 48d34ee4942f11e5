import { InboundSignatures } from "@cowork/channels"
import { FakeHttpServer, FakeService } from "./FakeHttpServer.ts"

export interface ReceivedWebhook {
  readonly idempotencyKey: string | undefined
  readonly signatureValid: boolean | undefined
  readonly body: unknown
  readonly at: number
}

/** An HTTP receiver for outbound webhooks: records each POST with its idempotency key and checks its signature. */
export class WebhookReceiver extends FakeService {
  readonly received: Array<ReceivedWebhook> = []
  readonly server: FakeHttpServer

  private readonly secret: string | undefined

  constructor(secret?: string) {
    super()
    this.secret = secret
    this.server = new FakeHttpServer((request) => {
      const header = (name: string) => {
        const value = request.headers[name]
        return Array.isArray(value) ? value[0] : value
      }
      const timestamp = header(InboundSignatures.WEBHOOK_TIMESTAMP_HEADER)
      const signature = header(InboundSignatures.WEBHOOK_SIGNATURE_HEADER)
      this.received.push({
        idempotencyKey: header(InboundSignatures.IDEMPOTENCY_KEY_HEADER),
        signatureValid: this.secret === undefined
          ? undefined
          : timestamp !== undefined && signature !== undefined &&
            InboundSignatures.verifyWebhook(this.secret, timestamp, Buffer.from(request.body), signature),
        body: JSON.parse(request.body) as unknown,
        at: request.at
      })
      return { status: 200, body: { ok: true } }
    })
  }

  get url(): string {
    return `${this.server.url}/hook`
  }

  /** Distinct idempotency keys received (after dedup). */
  keys(): ReadonlySet<string> {
    return new Set(this.received.flatMap((r) => (r.idempotencyKey === undefined ? [] : [r.idempotencyKey])))
  }

  waitForKeys(count: number, timeoutMs?: number): Promise<void> {
    return this.server.waitFor(() => this.keys().size >= count, timeoutMs, `${count} distinct webhook idempotency keys`)
  }
}
