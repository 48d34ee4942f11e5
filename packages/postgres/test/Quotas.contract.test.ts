import { newOrgId } from "@cowork/domain"
import { PgQuotas } from "@cowork/postgres"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { quotasContract } from "../../services/test/support/QuotasContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const newOrg = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const orgId = newOrgId()
  yield* sql`INSERT INTO cloud_orgs (id, name) VALUES (${orgId}, 'quotas')`
  return orgId as string
}).pipe(Effect.orDie)

quotasContract("postgres", PgQuotas.layer.pipe(Layer.provideMerge(TestDatabase.layer())), newOrg)
