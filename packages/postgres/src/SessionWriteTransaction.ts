import { NotFound } from "@cowork/domain"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"

/**
 * The transaction of a tenant's write to a session (a prompt, an answer to an ask): it first takes the session's row
 * FOR SHARE, which serializes with abort (that updates the row) without serializing concurrent writes; a session that
 * is not the org's is NotFound. `body` gets whether the session is aborted. A database error is a defect.
 */
export const sessionWriteTransaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  orgId: string,
  sessionId: string,
  body: (session: { readonly aborted: boolean }) => Effect.Effect<A, E, R>
) =>
  sql.withTransaction(Effect.gen(function*() {
    const sessions = yield* sql.unsafe<{ aborted: boolean }>(
      `SELECT aborted_at IS NOT NULL AS aborted FROM cloud_sessions WHERE id = $1 AND org_id = $2 FOR SHARE`,
      [sessionId, orgId]
    )
    const session = sessions[0]
    if (session === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
    return yield* body(session)
  })).pipe(Effect.catchTag("SqlError", Effect.die))
