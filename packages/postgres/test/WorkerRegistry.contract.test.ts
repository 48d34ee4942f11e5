import { PgWorkerRegistry } from "@cowork/postgres"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { workerRegistryContract } from "../../services/test/support/WorkerRegistryContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const storedCredentials = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return JSON.stringify(yield* sql`SELECT * FROM cloud_worker_credentials`)
}).pipe(Effect.orDie)

workerRegistryContract(
  "postgres",
  PgWorkerRegistry.layer.pipe(Layer.provideMerge(TestDatabase.layer())),
  storedCredentials,
  (orgId) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO cloud_orgs (id, name) VALUES (${orgId}, ${orgId}) ON CONFLICT DO NOTHING`
    }).pipe(Effect.orDie)
)
