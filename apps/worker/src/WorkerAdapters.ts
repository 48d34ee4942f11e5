import * as PgChangeFeed from "@cowork/postgres/PgChangeFeed"
import * as PgCommandQueue from "@cowork/postgres/PgCommandQueue"
import * as PgEventLog from "@cowork/postgres/PgEventLog"
import * as PgHeartbeats from "@cowork/postgres/PgHeartbeats"
import * as PgLeaseStore from "@cowork/postgres/PgLeaseStore"
import * as PgProjections from "@cowork/postgres/PgProjections"
import * as PgByokStore from "@cowork/postgres/PgByokStore"
import { RuntimeSelection } from "@cowork/runtime"
import { CheckpointStore } from "@cowork/storage"
import { Layer } from "effect"

/**
 * What the worker role runs on in production: the Postgres stores, the agent runtime, and checkpoints (chunks and
 * manifests in the process's `ObjectStore`, sealed with keys from its `SecretAdapter`, both provided by the caller).
 */
export const layerPg = Layer.mergeAll(
  PgLeaseStore.layer,
  PgCommandQueue.layer,
  PgEventLog.layer,
  PgHeartbeats.layer,
  PgChangeFeed.layer,
  PgProjections.layer,
  // OPEN_COWORK_CLOUD_RUNTIME: scripted (default) or opencode (keys revealed from cloud_byok_keys by the proxy).
  RuntimeSelection.layerConfig.pipe(Layer.provide(PgByokStore.layer)),
  CheckpointStore.layer
)
