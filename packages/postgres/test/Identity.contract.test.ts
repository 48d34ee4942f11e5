import { PgIdentity, PgTokens } from "@cowork/postgres"
import { newOrgId } from "@cowork/domain"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { identityContract } from "../../services/test/support/IdentityContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const newOrg = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const orgId = newOrgId()
  yield* sql`INSERT INTO cloud_orgs (id, name) VALUES (${orgId}, 'contract')`
  return orgId as string
}).pipe(Effect.orDie)

const storedSessions = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return JSON.stringify(yield* sql`SELECT id, secret_hash, org_id, account_id, csrf_token FROM cloud_browser_sessions`)
}).pipe(Effect.orDie)

identityContract("postgres", Layer.merge(PgIdentity.layer, PgTokens.layer).pipe(Layer.provideMerge(TestDatabase.layer())), newOrg, storedSessions)
