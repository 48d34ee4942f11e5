import type { CredentialCheck } from "@cowork/services"

/**
 * Folds credential rows (`ended` by the database clock, `expires_in_ms` until a live one's expiry, null when it never
 * expires) into a `CredentialCheck`, in the order the ids were asked for.
 */
export const credentialCheck = (
  rows: ReadonlyArray<{ readonly id: string; readonly ended: boolean; readonly expires_in_ms: number | null }>
): CredentialCheck => {
  let next: number | null = null
  for (const row of rows) {
    if (row.ended || row.expires_in_ms === null || !Number.isFinite(Number(row.expires_in_ms))) continue
    next = Math.min(next ?? Number(row.expires_in_ms), Number(row.expires_in_ms))
  }
  return { ended: rows.filter((row) => row.ended).map((row) => row.id), nextExpiryInMs: next }
}
