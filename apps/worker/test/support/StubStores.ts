import type { Lease, RunnableCommand } from "@cowork/domain"
import { LeaseStore, type ReapResult } from "@cowork/services"
import { Effect, Layer } from "effect"

export const lease = (sessionId = "ses_1", epoch = 1, extra: Partial<Lease> = {}): Lease => ({
  sessionId,
  workerId: "worker-test",
  epoch,
  ...extra
})

export const command = (extra: Partial<RunnableCommand> = {}): RunnableCommand => ({
  id: "cmd_1",
  sessionId: "ses_1",
  kind: "prompt",
  payload: { text: "hello" },
  attempt: 1,
  abandonedAttempts: 0,
  ...extra
})

const unexpected = (what: string) => Effect.die(`unexpected LeaseStore.${what} in this test`)

/** A `LeaseStore` whose every operation dies unless the test overrides it. */
export const stubLeaseStore = (overrides: Partial<LeaseStore["Service"]>) =>
  Layer.succeed(LeaseStore, LeaseStore.of({
    claim: () => unexpected("claim"),
    renew: () => unexpected("renew"),
    releaseIfIdle: () => unexpected("releaseIfIdle"),
    expire: () => unexpected("expire"),
    reapExpired: (): Effect.Effect<ReapResult> => unexpected("reapExpired"),
    ...overrides
  }))

/** Lets every ready fiber run (and register its next sleep); no clock time passes. */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 100; i++) yield* Effect.yieldNow
})
