import { Layer } from "effect"
import { Artifacts } from "./Artifacts.ts"
import { Audit } from "./Audit.ts"
import { ByokStore } from "./ByokStore.ts"
import { ChangeFeed } from "./ChangeFeed.ts"
import { ChannelStore } from "./ChannelStore.ts"
import { CommandQueue } from "./CommandQueue.ts"
import { ControlPlaneStatus } from "./ControlPlaneStatus.ts"
import { DeliveryFeed } from "./DeliveryFeed.ts"
import { DeploymentMarkers } from "./DeploymentMarkers.ts"
import { EventLog } from "./EventLog.ts"
import { Heartbeats } from "./Heartbeats.ts"
import { Identity } from "./Identity.ts"
import { Quotas } from "./Quotas.ts"
import { QueueControls } from "./QueueControls.ts"
import { Retention } from "./Retention.ts"
import { LeaseStore } from "./LeaseStore.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { ObjectStore } from "./ObjectStore.ts"
import { Offboarding } from "./Offboarding.ts"
import { SecretAdapter } from "./SecretAdapter.ts"
import { Projections } from "./Projections.ts"
import { SessionStore } from "./SessionStore.ts"
import { Threads } from "./Threads.ts"
import { Tokens } from "./Tokens.ts"
import { Usage } from "./Usage.ts"
import { WorkerRegistry } from "./WorkerRegistry.ts"
import { WorkflowStore } from "./WorkflowStore.ts"

/** Every control-plane service on memory over ONE fresh `MemoryDatabase` (exposed too, for tests that inspect it). */
export const layerMemoryControlPlane = Layer.mergeAll(
  LeaseStore.layerMemory,
  CommandQueue.layerMemory,
  EventLog.layerMemory,
  Heartbeats.layerMemory,
  ChangeFeed.layerMemory,
  SessionStore.layerMemory,
  Tokens.layerMemory,
  Projections.layerMemory,
  WorkerRegistry.layerMemory,
  Artifacts.layerMemory,
  ControlPlaneStatus.layerMemory,
  DeploymentMarkers.layerMemory,
  WorkflowStore.layerMemory,
  Offboarding.layerMemory.pipe(
    Layer.provideMerge(Layer.merge(Identity.layerMemory, ByokStore.layerMemory.pipe(Layer.provide(SecretAdapter.layerMemory))))
  ),
  Audit.layerMemory,
  Quotas.layerMemory,
  Usage.layerMemory,
  ChannelStore.layerMemory,
  DeliveryFeed.layerMemory,
  Threads.layerMemory,
  Retention.layerMemory,
  QueueControls.layerMemory
).pipe(Layer.provideMerge(Layer.merge(MemoryDatabase.layer, ObjectStore.layerMemory)))
