import { type ByokHealth, type ByokRow, type ByokRows, ByokStore, makeByokStore } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

interface Row {
  readonly org_id: string
  readonly provider: string
  readonly envelope: Uint8Array
  readonly key_id: string
  readonly last4: string
  readonly fingerprint: string
  readonly base_url: string | null
  readonly health: string
  readonly updated_at: Date
}

const COLUMNS = "org_id, provider, envelope, key_id, last4, fingerprint, base_url, health, updated_at"

const toRow = (row: Row): ByokRow => ({
  orgId: row.org_id,
  provider: row.provider,
  envelope: new Uint8Array(row.envelope),
  keyId: row.key_id,
  last4: row.last4,
  fingerprint: row.fingerprint,
  baseUrl: row.base_url ?? undefined,
  health: row.health as ByokHealth,
  updatedAt: new Date(row.updated_at)
})

/** BYOK rows in `cloud_byok_keys` (migration 15): envelopes only, never plaintext. */
export const rows = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const query = <A extends object>(text: string, params: ReadonlyArray<unknown>) =>
    sql.unsafe<A>(text, params as Array<unknown>).pipe(Effect.orDie)
  const byokRows: ByokRows = {
    upsert: (row) =>
      query<Row>(
        `INSERT INTO cloud_byok_keys (org_id, provider, envelope, key_id, last4, fingerprint, base_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (org_id, provider) DO UPDATE SET envelope = EXCLUDED.envelope, key_id = EXCLUDED.key_id,
           last4 = EXCLUDED.last4, fingerprint = EXCLUDED.fingerprint, base_url = EXCLUDED.base_url,
           health = 'unknown', updated_at = now()
         RETURNING ${COLUMNS}`,
        [row.orgId, row.provider, Buffer.from(row.envelope), row.keyId, row.last4, row.fingerprint, row.baseUrl ?? null]
      ).pipe(Effect.map((result) => toRow(result[0]!))),
    get: (orgId, provider) =>
      query<Row>(`SELECT ${COLUMNS} FROM cloud_byok_keys WHERE org_id = $1 AND provider = $2`, [orgId, provider]).pipe(
        Effect.map((result) => result[0] === undefined ? undefined : toRow(result[0]))
      ),
    list: (orgId) =>
      query<Row>(`SELECT ${COLUMNS} FROM cloud_byok_keys WHERE org_id = $1 ORDER BY provider`, [orgId]).pipe(
        Effect.map((result) => result.map(toRow))
      ),
    remove: (orgId, provider) =>
      query<{ provider: string }>(`DELETE FROM cloud_byok_keys WHERE org_id = $1 AND provider = $2 RETURNING provider`, [orgId, provider])
        .pipe(Effect.map((result) => result.length > 0)),
    setHealth: (orgId, provider, health) =>
      query<{ provider: string }>(
        `UPDATE cloud_byok_keys SET health = $3 WHERE org_id = $1 AND provider = $2 RETURNING provider`,
        [orgId, provider, health]
      ).pipe(Effect.map((result) => result.length > 0)),
    sealedWithOtherThan: (keyId, limit) =>
      query<Row>(`SELECT ${COLUMNS} FROM cloud_byok_keys WHERE key_id <> $1 ORDER BY org_id, provider LIMIT $2`, [keyId, limit]).pipe(
        Effect.map((result) => result.map(toRow))
      ),
    replaceEnvelope: (row, envelope, keyId) =>
      query<{ provider: string }>(
        `UPDATE cloud_byok_keys SET envelope = $4, key_id = $5
         WHERE org_id = $1 AND provider = $2 AND envelope = $3 RETURNING provider`,
        [row.orgId, row.provider, Buffer.from(row.envelope), Buffer.from(envelope), keyId]
      ).pipe(Effect.map((result) => result.length > 0))
  }
  return byokRows
})

export const layer = Layer.effect(ByokStore, Effect.flatMap(rows, makeByokStore))
