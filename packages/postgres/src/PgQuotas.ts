import type { QuotaName } from "@cowork/domain"
import { type QuotaOverrides, Quotas } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/** Quota overrides in `cloud_org_quotas`. */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const overrides = Effect.fnUntraced(function*(orgId: string) {
    const rows = yield* sql.unsafe<{ quota: QuotaName; value: string | number }>(
      `SELECT quota, value FROM cloud_org_quotas WHERE org_id = $1`,
      [orgId]
    )
    const result: QuotaOverrides = {}
    for (const row of rows) result[row.quota] = Number(row.value)
    return result
  }, Effect.orDie, Effect.withSpan("Quotas.overrides"))
  const setOverride = Effect.fn("Quotas.setOverride")(function*(orgId: string, quota: QuotaName, value: number | null) {
    if (value === null) {
      yield* sql.unsafe(`DELETE FROM cloud_org_quotas WHERE org_id = $1 AND quota = $2`, [orgId, quota])
      return
    }
    yield* sql.unsafe(
      `INSERT INTO cloud_org_quotas (org_id, quota, value) VALUES ($1, $2, $3)
       ON CONFLICT (org_id, quota) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [orgId, quota, value]
    )
  }, Effect.orDie)
  return Quotas.of({ overrides, setOverride })
})

export const layer = Layer.effect(Quotas, make)
