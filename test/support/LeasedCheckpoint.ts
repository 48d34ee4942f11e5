import { Metrics } from "@cowork/observability"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { CheckpointStore, FileObjectStore } from "@cowork/storage"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Path from "node:path"

/**
 * The checkpoint a session's lease row names, read as a worker of a `cowork` data dir reads it (the dir's file object
 * store under `objects/` and its `secret.key`), with the org and version it was found under.
 */
export const leasedCheckpoint = (dataDir: string, sessionId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const version = Number((yield* sql<{ v: number }>`SELECT checkpoint_version::float8 AS v FROM cloud_worker_leases WHERE session_id = ${sessionId}`)[0]!.v)
    const orgId = (yield* sql<{ org_id: string }>`SELECT org_id FROM cloud_sessions WHERE id = ${sessionId}`)[0]!.org_id
    const state = yield* Effect.gen(function*() {
      const store = yield* CheckpointStore
      return yield* store.load(orgId, sessionId, version)
    }).pipe(Effect.provide(CheckpointStore.layer.pipe(
      Layer.provide([FileObjectStore.layer(Path.join(dataDir, "objects")), LocalKeyFileSecretAdapter.layer(Path.join(dataDir, "secret.key"))]),
      Layer.provide(Metrics.layerTest("worker"))
    )))
    return { orgId, version, state }
  })
