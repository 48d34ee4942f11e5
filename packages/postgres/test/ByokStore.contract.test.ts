import { PgByokStore } from "@cowork/postgres"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Crypto from "node:crypto"
import { byokStoreContract } from "../../services/test/support/ByokStoreContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const createOrg = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const id = `org_${Crypto.randomBytes(6).toString("hex")}`
  yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ($1, $2)`, [id, "byok contract"])
  return id
}).pipe(Effect.orDie)

const stored = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<Record<string, unknown>>(`SELECT * FROM cloud_byok_keys`)
  return JSON.stringify(rows.map((row) => ({ ...row, envelope: Buffer.from(row.envelope as Uint8Array).toString("latin1") })))
}).pipe(Effect.orDie)

byokStoreContract("postgres", TestDatabase.layer(), PgByokStore.rows, createOrg, stored)
