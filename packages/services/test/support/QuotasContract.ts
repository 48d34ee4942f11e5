import { Quotas } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer } from "effect"

/** Per-org quota overrides, on memory and Postgres: set, replace, clear, org isolation. */
export const quotasContract = <E, R = never>(name: string, quotasLayer: Layer.Layer<Quotas | R, E>, newOrg: Effect.Effect<string, never, R>) =>
  layer(quotasLayer, { timeout: 60_000 })(`Quotas contract: ${name}`, (it) => {
    it.effect("an override replaces the default for its org only, and clearing it restores the default", () =>
      Effect.gen(function*() {
        const quotas = yield* Quotas
        const orgId = yield* newOrg
        const other = yield* newOrg
        assert.deepStrictEqual(yield* quotas.overrides(orgId), {})
        yield* quotas.setOverride(orgId, "prompts_per_hour", 5)
        yield* quotas.setOverride(orgId, "queued_commands", 7)
        yield* quotas.setOverride(orgId, "prompts_per_hour", 9)
        assert.deepStrictEqual(yield* quotas.overrides(orgId), { prompts_per_hour: 9, queued_commands: 7 })
        assert.deepStrictEqual(yield* quotas.overrides(other), {})
        yield* quotas.setOverride(orgId, "queued_commands", null)
        assert.deepStrictEqual(yield* quotas.overrides(orgId), { prompts_per_hour: 9 })
      }))
  })
