import { SessionStore, Usage } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { newOrg } from "./ControlPlaneFixtures.ts"

/** Usage read back from what the control plane records, on memory and Postgres: window counts, keyset event pages. */
/** `usageLayer` is built over the harness's own store (memory: its `MemoryDatabase`; Postgres: its `SqlClient`). */
export const usageContract = <R>(harness: ControlPlaneHarness<R>, usageLayer: Layer.Layer<Usage, never, any>) =>
  describe(`Usage contract: ${harness.name}`, () => {
    it.effect("counts the org's prompts and sessions in the window; pages its events newest first without gap or repeat", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const sessions = yield* SessionStore
        const usage = yield* Usage
        const orgId = yield* newOrg
        const other = yield* newOrg
        const session = yield* sessions.create(orgId, {})
        for (const text of ["a", "b", "c"]) yield* sessions.prompt(orgId, session.id, { text })
        const elsewhere = yield* sessions.create(other, {})
        yield* sessions.prompt(other, elsewhere.id, { text: "not ours" })

        const always = { since: "1970-01-01T00:00:00.000Z", until: "2999-01-01T00:00:00.000Z" }
        assert.deepInclude(yield* usage.summary(orgId, always), { orgId, prompts: 3, sessionsCreated: 1, artifactUploads: 0, artifactBytes: 0 })
        assert.deepInclude(yield* usage.summary(orgId, { since: "2999-01-01T00:00:00.000Z", until: "2999-01-02T00:00:00.000Z" }), {
          prompts: 0,
          sessionsCreated: 0
        })

        const ids: Array<string> = []
        let cursor: string | undefined
        for (let page = 0; page < 5; page++) {
          const result = yield* usage.events(orgId, { limit: 2, cursor })
          ids.push(...result.events.map((event) => event.id))
          for (const event of result.events) assert.deepInclude(event, { kind: "prompt", sessionId: session.id, quantity: 1, unit: "prompts" })
          if (result.nextCursor === null) break
          cursor = result.nextCursor
        }
        assert.strictEqual(ids.length, 3)
        assert.strictEqual(new Set(ids).size, 3)
        assert.deepStrictEqual((yield* usage.events(orgId, { limit: 10, cursor: "bogus" })).events, [])
      }).pipe(Effect.provide(usageLayer)) as Effect.Effect<void, never, never>))
  })
