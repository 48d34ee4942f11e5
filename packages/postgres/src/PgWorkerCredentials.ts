import { Conflict, isTerminal, WORKER_CREDENTIAL_SCOPES, type WorkerLifecycle } from "@cowork/domain"
import { type Actor, clampCredentialTtl, newWorkerSecret, type RegistryScope } from "@cowork/services"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import { CREDENTIAL_COLUMNS, type CredentialRow, credentialOf, inScope, notFound, registryAudit } from "./WorkerRegistryRows.ts"

/** The credential half of `PgWorkerRegistry`: list, issue, rotate (linked, with grace) and revoke, each audited. */
export const makeWorkerCredentials = (sql: SqlClient.SqlClient) => {
  const audit = registryAudit(sql)

  const workerStatus = (workerId: string, scope: RegistryScope) =>
    Effect.gen(function*() {
      const rows = yield* sql.unsafe<{ status: WorkerLifecycle }>(
        `SELECT w.status FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id
         WHERE w.id = $1 AND ${inScope("p", "$2")} FOR UPDATE OF w`,
        [workerId, scope.orgId]
      )
      const row = rows[0]
      if (row === undefined) return yield* notFound("worker", workerId)
      return row.status
    })

  const insertCredential = (workerId: string, expiresInSeconds: number | undefined, replacesId: string | null) =>
    Effect.gen(function*() {
      const fresh = newWorkerSecret()
      const rows = yield* sql.unsafe<CredentialRow>(
        `INSERT INTO cloud_worker_credentials (id, worker_id, secret_hash, scopes, expires_at, replaces_id)
         VALUES ($1, $2, $3, $4::text[], now() + make_interval(secs => $5::float8), $6)
         RETURNING ${CREDENTIAL_COLUMNS}`,
        [fresh.credentialId, workerId, fresh.secretHash, [...WORKER_CREDENTIAL_SCOPES], clampCredentialTtl(expiresInSeconds), replacesId]
      )
      return { credential: credentialOf(rows[0]!), plaintext: fresh.plaintext }
    })

  const refuseTerminal = (workerId: string, status: WorkerLifecycle) =>
    isTerminal(status)
      ? Effect.fail(new Conflict({ message: `worker ${workerId} is ${status}: terminal workers get no new credentials` }))
      : Effect.void

  const listCredentials = Effect.fn("WorkerRegistry.listCredentials")(function*(workerId: string, scope: RegistryScope) {
    const exists = yield* sql.unsafe<{ id: string }>(
      `SELECT w.id FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id WHERE w.id = $1 AND ${inScope("p", "$2")}`,
      [workerId, scope.orgId]
    )
    if (exists.length === 0) return yield* notFound("worker", workerId)
    const rows = yield* sql.unsafe<CredentialRow>(
      `SELECT ${CREDENTIAL_COLUMNS} FROM cloud_worker_credentials WHERE worker_id = $1 ORDER BY created_at, id`,
      [workerId]
    )
    return rows.map(credentialOf)
  }, Effect.catchTag("SqlError", Effect.die))

  const issueCredential = Effect.fn("WorkerRegistry.issueCredential")(function*(
    workerId: string,
    options: { readonly expiresInSeconds?: number | undefined },
    actor: Actor
  ) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* refuseTerminal(workerId, yield* workerStatus(workerId, actor))
      const issued = yield* insertCredential(workerId, options.expiresInSeconds, null)
      yield* audit(actor, "worker_credential.issued", issued.credential.id, {
        workerId,
        scopes: issued.credential.scopes,
        expiresAt: issued.credential.expiresAt
      })
      return issued
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const rotateCredential = Effect.fn("WorkerRegistry.rotateCredential")(function*(
    workerId: string,
    credentialId: string,
    options: { readonly expiresInSeconds?: number | undefined; readonly graceSeconds?: number | undefined },
    actor: Actor
  ) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* refuseTerminal(workerId, yield* workerStatus(workerId, actor))
      const old = yield* sql.unsafe<{ revoked_at: Date | null }>(
        `SELECT revoked_at FROM cloud_worker_credentials WHERE id = $1 AND worker_id = $2 FOR UPDATE`,
        [credentialId, workerId]
      )
      if (old[0] === undefined) return yield* notFound("credential", credentialId)
      if (old[0].revoked_at !== null) return yield* new Conflict({ message: `credential ${credentialId} is revoked; issue a new one` })
      const issued = yield* insertCredential(workerId, options.expiresInSeconds, credentialId)
      yield* sql.unsafe(
        `UPDATE cloud_worker_credentials SET replaced_by_id = $2,
           expires_at = CASE WHEN $3::float8 IS NULL THEN expires_at
             ELSE least(expires_at, now() + make_interval(secs => $3::float8)) END
         WHERE id = $1`,
        [credentialId, issued.credential.id, options.graceSeconds ?? null]
      )
      yield* audit(actor, "worker_credential.rotated", credentialId, {
        workerId,
        replacementId: issued.credential.id,
        graceSeconds: options.graceSeconds ?? null
      })
      yield* audit(actor, "worker_credential.issued", issued.credential.id, {
        workerId,
        scopes: issued.credential.scopes,
        expiresAt: issued.credential.expiresAt,
        replacesId: credentialId
      })
      return issued
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const revokeCredential = Effect.fn("WorkerRegistry.revokeCredential")(function*(workerId: string, credentialId: string, actor: Actor) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* workerStatus(workerId, actor)
      const rows = yield* sql.unsafe<CredentialRow & { was_revoked: boolean }>(
        `WITH before AS (SELECT id, revoked_at IS NOT NULL AS was_revoked FROM cloud_worker_credentials
           WHERE id = $1 AND worker_id = $2 FOR UPDATE)
         UPDATE cloud_worker_credentials c SET revoked_at = coalesce(c.revoked_at, now())
         FROM before WHERE c.id = before.id
         RETURNING ${CREDENTIAL_COLUMNS.split(", ").map((column) => `c.${column}`).join(", ")}, before.was_revoked`,
        [credentialId, workerId]
      )
      const row = rows[0]
      if (row === undefined) return yield* notFound("credential", credentialId)
      if (!row.was_revoked) yield* audit(actor, "worker_credential.revoked", credentialId, { workerId })
      return credentialOf(row)
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  return { listCredentials, issueCredential, rotateCredential, revokeCredential }
}
