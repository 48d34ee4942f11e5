import { Audit } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer } from "effect"

/** What every Audit does, on memory and Postgres: newest first, keyset pages without gap or repeat, filters, org isolation. */
export const auditContract = <E, R = never>(name: string, auditLayer: Layer.Layer<Audit | R, E>) =>
  layer(auditLayer, { timeout: 60_000 })(`Audit contract: ${name}`, (it) => {
    it.effect("pages newest first with no gap or repeat; filters by actor and action; another org sees nothing", () =>
      Effect.gen(function*() {
        const audit = yield* Audit
        const orgId = `org_${globalThis.crypto.randomUUID().slice(0, 8)}`
        for (let i = 0; i < 7; i++) {
          yield* audit.record({
            orgId,
            actor: i % 2 === 0 ? "account:a" : "account:b",
            action: i < 5 ? "auth.sign_in" : "member.removed",
            target: `t${i}`,
            requestId: `req-${i}`,
            details: { n: i, method: "oidc", ok: true }
          })
        }
        yield* audit.record({ orgId: "org_someone_else", actor: "account:a", action: "auth.sign_in" })

        const seen: Array<string> = []
        let cursor: string | undefined
        for (let pages = 0; pages < 10; pages++) {
          const page = yield* audit.list(orgId, { limit: 3, cursor })
          seen.push(...page.events.map((event) => event.target!))
          if (page.nextCursor === null) break
          cursor = page.nextCursor
        }
        assert.deepStrictEqual(seen, ["t6", "t5", "t4", "t3", "t2", "t1", "t0"])

        const first = (yield* audit.list(orgId, { limit: 1 })).events[0]!
        assert.deepInclude(first, { orgId, actor: "account:a", action: "member.removed", target: "t6", requestId: "req-6" })
        assert.deepStrictEqual(first.details, { n: 6, method: "oidc", ok: true })
        assert.isFalse(Number.isNaN(Date.parse(first.at)))

        const byActor = yield* audit.list(orgId, { limit: 50, actor: "account:b" })
        assert.deepStrictEqual(byActor.events.map((event) => event.target), ["t5", "t3", "t1"])
        const byAction = yield* audit.list(orgId, { limit: 50, action: "member.removed" })
        assert.deepStrictEqual(byAction.events.map((event) => event.target), ["t6", "t5"])
        const all = (yield* audit.list(orgId, { limit: 50 })).events
        const oldestAt = all[all.length - 1]!.at
        const afterNewest = new Date(Date.parse(all[0]!.at) + 1).toISOString()
        assert.deepStrictEqual((yield* audit.list(orgId, { limit: 50, since: afterNewest })).events, [], "since is inclusive of later rows only")
        assert.deepStrictEqual((yield* audit.list(orgId, { limit: 50, until: oldestAt })).events, [], "until is exclusive")
        assert.strictEqual((yield* audit.list(orgId, { limit: 50, since: oldestAt })).events.length, 7)
        assert.deepStrictEqual((yield* audit.list(orgId, { limit: 50, cursor: "not-a-cursor" })).events, [])
        assert.deepStrictEqual((yield* audit.list(`org_${globalThis.crypto.randomUUID().slice(0, 8)}`, { limit: 50 })).events, [])
      }))
  })
