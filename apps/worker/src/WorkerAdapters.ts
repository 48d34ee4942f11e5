import {
  PgByokStore,
  PgChangeFeed,
  PgCommandQueue,
  PgDeploymentMarkers,
  PgEventLog,
  PgHeartbeats,
  PgLeaseStore,
  PgProjections
} from "@cowork/postgres"
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
  PgDeploymentMarkers.layer,
  // OPEN_COWORK_CLOUD_RUNTIME: scripted (default) or opencode (keys revealed from cloud_byok_keys by the proxy).
  RuntimeSelection.layerConfig.pipe(Layer.provide(PgByokStore.layer)),
  CheckpointStore.layer
)
