import type {
  CommandKind,
  CommandPayload,
  CommandStatus,
  QuotaName,
  RegisteredWorker,
  SessionEvent,
  SessionStatus,
  StoredAsk,
  TokenScope,
  WorkerCredentialView,
  WorkerPool
} from "@cowork/domain"
import { Context, Effect, Layer, PubSub } from "effect"
import type { CommandSignal, Revocation, SessionChanged } from "./ChangeFeed.ts"
import type { MemoryChannelTables } from "./ChannelStore.ts"
import type { DeliveryNotice } from "./DeliveryFeed.ts"
import type { HeartbeatInput } from "./Heartbeats.ts"
import type { MemoryWorkflowTables } from "./WorkflowStore.ts"

/**
 * The control plane's tables in memory: ONE value every `layerMemory` shares, the way the Postgres layers share a
 * database, so a test composes any subset of memory services over the same state. Every memory operation reads
 * the Effect `Clock` once and then changes these tables in one synchronous step: as atomic as the single-statement
 * Postgres writes it mirrors, and `TestClock` drives every expiry. Times are epoch millis by that clock.
 */
export interface MemoryTables {
  readonly orgs: Map<string, { readonly id: string; readonly name: string; readonly createdAt: number }>
  readonly tokens: Map<string, MemoryToken>
  readonly sessions: Map<string, MemorySession>
  readonly projections: Map<string, MemoryProjection>
  readonly events: Map<string, Array<MemoryEvent>>
  readonly leases: Map<string, MemoryLease>
  /** In insertion order: `position` order, like the Postgres sequence. */
  readonly commands: Array<MemoryCommand>
  readonly heartbeats: Map<string, MemoryHeartbeat>
  readonly pools: Map<string, WorkerPool>
  readonly workers: Map<string, RegisteredWorker>
  readonly credentials: Map<string, MemoryCredential>
  readonly artifacts: Map<string, MemoryArtifact>
  readonly workflowTables: MemoryWorkflowTables
  readonly channelTables: MemoryChannelTables
  /** `NOTIFY cowork_channel_deliveries`. */
  readonly deliveryNotices: PubSub.PubSub<DeliveryNotice>
  /** `NOTIFY cowork_events`. */
  readonly sessionChanges: PubSub.PubSub<SessionChanged>
  /** `NOTIFY cowork_commands`. */
  readonly commandSignals: PubSub.PubSub<CommandSignal>
  /** `NOTIFY cowork_auth`. */
  readonly revocations: PubSub.PubSub<Revocation>
  /** `NOTIFY cowork_commands 'workflow'`: a workflow's schedule or runs changed (the scheduler re-plans its wake). */
  readonly workflowChanges: PubSub.PubSub<void>
  /** `cloud_orgs.offboarded_at`: an offboarded org gets no new token or browser session. */
  readonly offboardedOrgs: Map<string, number>
  /** `cloud_org_quotas`: per-org overrides of the configured quota defaults (read by prompt admission too). */
  readonly orgQuotas: Map<string, Partial<Record<QuotaName, number>>>
}

export interface MemoryToken {
  readonly id: string
  /** `null` for a platform operator token. */
  readonly orgId: string | null
  readonly name: string
  readonly createdAt: number
  readonly secretHash: string
  readonly scopes: ReadonlyArray<TokenScope>
  readonly expiresAt: number | null
  revokedAt: number | null
  lastUsedAt: number | null
}

interface MemorySession {
  readonly id: string
  readonly orgId: string
  title: string
  /** Distinct, lower-case (absent: none). */
  tags?: ReadonlyArray<string>
  /** `account:<id>` or `token:<id>` that created it (absent: unknown). */
  readonly createdBy?: string | null
  readonly profileName: string
  readonly createdAt: number
  abortedAt: number | null
}

interface MemoryMessage {
  readonly messageId: string
  readonly role: "user" | "assistant"
  readonly text: string
  readonly commandId: string | null
  readonly attempt: number | null
  readonly sequence: number
}

interface MemoryProjection {
  readonly orgId: string
  status: SessionStatus
  lastSequence: number
  projectedSequence: number
  earliestSequence: number
  updatedAt: number
  readonly messages: Map<string, MemoryMessage>
  /** Pending asks by `askKey(kind, id)`. */
  readonly asks: Map<string, StoredAsk>
}

interface MemoryEvent extends SessionEvent {
  readonly commandId: string | null
  readonly attempt: number | null
}

export interface MemoryLease {
  workerId: string | null
  epoch: number
  /** `-Infinity` for a lease nobody holds. */
  expiresAt: number
  checkpointVersion: number
}

export interface MemoryCommand {
  readonly id: string
  readonly sessionId: string
  readonly orgId: string
  readonly kind: CommandKind
  readonly payload: CommandPayload
  readonly idempotencyKey: string | null
  readonly traceParent: string | null
  readonly createdAt: number
  status: CommandStatus
  attemptCount: number
  claimedEpoch: number | null
  claimedBy: string | null
  lastError: string | null
}

interface MemoryHeartbeat extends Omit<HeartbeatInput, "credential"> {
  readonly lastSeenAt: number
}

export interface MemoryCredential extends WorkerCredentialView {
  readonly secretHash: string
}

export interface MemoryArtifact {
  readonly id: string
  readonly orgId: string
  readonly sessionId: string
  readonly name: string
  readonly contentType: string
  readonly sizeBytes: number
  readonly sha256: string
  readonly objectKey: string
  readonly createdBy: string
  readonly createdAt: number
}

export class MemoryDatabase extends Context.Service<MemoryDatabase, MemoryTables>()("cowork/MemoryDatabase") {
  /** A fresh, empty database. */
  static readonly layer: Layer.Layer<MemoryDatabase> = Layer.effect(
    MemoryDatabase,
    Effect.gen(function*() {
      return MemoryDatabase.of({
        orgs: new Map(),
        tokens: new Map(),
        sessions: new Map(),
        projections: new Map(),
        events: new Map(),
        leases: new Map(),
        commands: [],
        heartbeats: new Map(),
        pools: new Map(),
        workers: new Map(),
        credentials: new Map(),
        artifacts: new Map(),
        workflowTables: { workflows: new Map(), runs: [], deliveries: new Map(), order: new Map() },
        channelTables: {
          bindings: new Map(),
          routes: new Map(),
          identities: new Map(),
          deliveries: [],
          providerEvents: new Map(),
          cursors: new Map(),
          gatewayGrants: new Map()
        },
        deliveryNotices: yield* PubSub.unbounded<DeliveryNotice>(),
        sessionChanges: yield* PubSub.unbounded<SessionChanged>(),
        commandSignals: yield* PubSub.unbounded<CommandSignal>(),
        revocations: yield* PubSub.unbounded<Revocation>(),
        workflowChanges: yield* PubSub.unbounded<void>(),
        offboardedOrgs: new Map(),
        orgQuotas: new Map()
      })
    })
  )
}
