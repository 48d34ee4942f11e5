import {
  type ArtifactRetentionPolicy,
  CANCELLED_BY_OFFBOARDING,
  commandCancelledEvent,
  type EventDraft,
  type InvalidObjectKey, NotFound,
  type ObjectStoreUnavailable,
  type OffboardingArtifacts,
  settledIdleEvent
} from "@cowork/domain"
import { Artifacts } from "./Artifacts.ts"
import { Clock, Context, Effect, Layer, PubSub } from "effect"
import { ByokStore } from "./ByokStore.ts"
import { Identity } from "./Identity.ts"
import type { Revocation } from "./ChangeFeed.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { appendToLog } from "./MemoryLog.ts"

/** What is still active for an org; after offboarding everything but `runningCommands` is 0 at once. */
export interface OrgActivity {
  readonly liveApiTokens: number
  readonly liveBrowserSessions: number
  readonly pendingCommands: number
  /** Prompts a worker was already running: they finish (or fail) on their own; poll until 0. */
  readonly runningCommands: number
  readonly openSessions: number
  readonly activeWorkflows: number
  /** Unrevoked, unexpired credentials of workers in the org's own (self-hosted) pools. */
  readonly liveWorkerCredentials: number
  readonly byokKeys: number
  /** Gateway tokens (API tokens with the `gateway` scope, also counted in `liveApiTokens`) still accepted. */
  readonly liveGatewayTokens: number
  /** Channel bindings not disabled: a gateway would still serve them. */
  readonly activeChannelBindings: number
  /** Channel deliveries still pending, failed (to be retried) or claimed. */
  readonly openDeliveries: number
}

/** What offboarding does to a delivery it ends (its `lastError`). */
export const OFFBOARDED_DELIVERY_ERROR = CANCELLED_BY_OFFBOARDING

/**
 * What offboarding appends to a session whose pending commands it cancelled, in the offboarding's transaction: a
 * `command.cancelled` (reason CANCELLED_BY_OFFBOARDING) per command in mailbox order, then `session.status` idle when
 * that left a `queued` session with nothing running (as a dead-letter settles it), so its readers see it end.
 */
export const offboardingCancelEvents = (
  cancelled: ReadonlyArray<{ readonly commandId: string; readonly kind: string }>,
  settles: boolean
): ReadonlyArray<EventDraft> => {
  const events = cancelled.map((command) => commandCancelledEvent(command, { offboarded: true }))
  const last = cancelled.at(-1)
  return settles && last !== undefined ? [...events, settledIdleEvent(last.commandId)] : events
}

/** What one offboarding ended, by kind. */
export interface OffboardingEnded {
  apiTokens: number
  browserSessions: number
  pendingCommands: number
  sessions: number
  workflows: number
  workers: number
  workerCredentials: number
  byokKeys: number
  /** Of `apiTokens`, those with the `gateway` scope. */
  gatewayTokens: number
  channelBindings: number
  deliveries: number
}

export interface OffboardingReport {
  readonly orgId: string
  readonly offboardedAt: string
  readonly ended: Readonly<OffboardingEnded>
  readonly remaining: OrgActivity
}

/** Nothing ended yet: a store counts what it ends into this, then reports it with `offboardingReport`. */
export const nothingEnded = (): OffboardingEnded => ({
  apiTokens: 0,
  browserSessions: 0,
  pendingCommands: 0,
  sessions: 0,
  workflows: 0,
  workers: 0,
  workerCredentials: 0,
  byokKeys: 0,
  gatewayTokens: 0,
  channelBindings: 0,
  deliveries: 0
})

/** The report every `Offboarding` store answers with. */
export const offboardingReport = (orgId: string, offboardedAt: Date, ended: OffboardingEnded, remaining: OrgActivity): OffboardingReport => ({
  orgId,
  offboardedAt: offboardedAt.toISOString(),
  ended,
  remaining
})

/**
 * The artifacts step of offboarding, after the transaction: under `delete`, every artifact object and row of the org
 * goes (and stray objects under its prefix); under `retain`, nothing. Reports what the org still has.
 */
export const applyArtifactRetention = (
  orgId: string,
  policy: ArtifactRetentionPolicy
): Effect.Effect<OffboardingArtifacts, ObjectStoreUnavailable | InvalidObjectKey, Artifacts> =>
  Effect.gen(function*() {
    const artifacts = yield* Artifacts
    const deleted = policy === "delete" ? yield* artifacts.deleteOrg(orgId) : { artifacts: 0, bytes: 0, strayObjects: 0 }
    return {
      policy,
      deleted: deleted.artifacts,
      deletedBytes: deleted.bytes,
      strayObjects: deleted.strayObjects,
      remaining: yield* artifacts.countOrg(orgId)
    }
  })

/**
 * Tenant offboarding (runbook "Tenant Offboarding"), in one transaction: the org is marked offboarded, its API tokens
 * and browser sessions are revoked, its pending commands cancelled, its sessions aborted, its workflows archived, the
 * workers of its own pools revoked with their credentials, its BYOK keys deleted, its channel bindings disabled and its
 * open deliveries dead-lettered (its gateway tokens are API tokens: revoked with them). Its audit rows and artifacts
 * stay (retention is a separate decision). Idempotent: a second run ends nothing new.
 */
export class Offboarding extends Context.Service<Offboarding, {
  readonly offboard: (orgId: string) => Effect.Effect<OffboardingReport, NotFound>
  readonly activity: (orgId: string) => Effect.Effect<OrgActivity, NotFound>
}>()("cowork/Offboarding") {
  static readonly layerMemory: Layer.Layer<Offboarding, never, MemoryDatabase | Identity | ByokStore> = Layer.effect(
    Offboarding,
    Effect.gen(function*() {
      const db = yield* MemoryDatabase
      const identity = yield* Identity
      const byok = yield* ByokStore
      const orgWorkerIds = (orgId: string) => {
        const pools = new Set([...db.pools.values()].filter((pool) => pool.orgId === orgId).map((pool) => pool.id))
        return new Set([...db.workers.values()].filter((worker) => pools.has(worker.poolId)).map((worker) => worker.id))
      }
      const offboardedAt = db.offboardedOrgs
      const notFound = (orgId: string) => new NotFound({ message: `org ${orgId} not found` })

      const activity = (orgId: string) =>
        Effect.gen(function*() {
          if (!db.orgs.has(orgId)) return yield* notFound(orgId)
          const now = yield* Clock.currentTimeMillis
          const commands = db.commands.filter((command) => command.orgId === orgId)
          return {
            liveApiTokens: [...db.tokens.values()].filter((token) =>
              token.orgId === orgId && token.revokedAt === null && (token.expiresAt === null || token.expiresAt > now)
            ).length,
            liveBrowserSessions: (yield* identity.listSessions(orgId)).length,
            pendingCommands: commands.filter((command) => command.status === "pending").length,
            runningCommands: commands.filter((command) => command.status === "running").length,
            openSessions: [...db.sessions.values()].filter((session) => session.orgId === orgId && session.abortedAt === null).length,
            activeWorkflows: [...db.workflowTables.workflows.values()].filter((workflow) =>
              workflow.orgId === orgId && workflow.lifecycle !== "archived"
            ).length,
            liveWorkerCredentials: (() => {
              const workers = orgWorkerIds(orgId)
              return [...db.credentials.values()].filter((credential) =>
                workers.has(credential.workerId) && credential.revokedAt === null && Date.parse(credential.expiresAt) > now
              ).length
            })(),
            byokKeys: (yield* byok.list(orgId)).length,
            liveGatewayTokens: [...db.tokens.values()].filter((token) =>
              token.orgId === orgId && token.scopes.includes("gateway") && token.revokedAt === null &&
              (token.expiresAt === null || token.expiresAt > now)
            ).length,
            activeChannelBindings: [...db.channelTables.bindings.values()].filter((binding) =>
              binding.orgId === orgId && binding.status !== "disabled"
            ).length,
            openDeliveries: db.channelTables.deliveries.filter((delivery) =>
              delivery.orgId === orgId && (delivery.status === "pending" || delivery.status === "failed" || delivery.status === "claimed")
            ).length
          } satisfies OrgActivity
        })

      return Offboarding.of({
        activity,
        offboard: (orgId) =>
          Effect.gen(function*() {
            if (!db.orgs.has(orgId)) return yield* notFound(orgId)
            const now = yield* Clock.currentTimeMillis
            if (!offboardedAt.has(orgId)) offboardedAt.set(orgId, now)
            const ended = nothingEnded()
            for (const token of db.tokens.values()) {
              if (token.orgId === orgId && token.revokedAt === null) {
                token.revokedAt = now
                ended.apiTokens++
                if (token.scopes.includes("gateway")) ended.gatewayTokens++
              }
            }
            for (const binding of db.channelTables.bindings.values()) {
              if (binding.orgId === orgId && binding.status !== "disabled") {
                db.channelTables.bindings.set(binding.id, {
                  ...binding,
                  status: "disabled",
                  statusDetail: OFFBOARDED_DELIVERY_ERROR,
                  updatedAt: new Date(now).toISOString()
                })
                ended.channelBindings++
              }
            }
            for (const delivery of db.channelTables.deliveries) {
              if (delivery.orgId === orgId && (delivery.status === "pending" || delivery.status === "failed" || delivery.status === "claimed")) {
                delivery.status = "dead"
                delivery.claimToken = null
                delivery.claimExpiresAt = null
                delivery.lastError = OFFBOARDED_DELIVERY_ERROR
                delivery.updatedAt = now
                ended.deliveries++
              }
            }
            ended.browserSessions = yield* identity.revokeOrgSessions(orgId)
            const cancelled = new Map<string, Array<{ commandId: string; kind: string }>>()
            for (const command of db.commands) {
              if (command.orgId === orgId && command.status === "pending") {
                command.status = "cancelled"
                ended.pendingCommands++
                const ofSession = cancelled.get(command.sessionId) ?? []
                ofSession.push({ commandId: command.id, kind: command.kind })
                cancelled.set(command.sessionId, ofSession)
              }
            }
            for (const [sessionId, commands] of [...cancelled].sort(([a], [b]) => a.localeCompare(b))) {
              const running = db.commands.some((command) => command.sessionId === sessionId && command.status === "running")
              const settles = !running && db.projections.get(sessionId)?.status === "queued"
              appendToLog(db, sessionId, offboardingCancelEvents(commands, settles), now)
            }
            for (const session of db.sessions.values()) {
              if (session.orgId === orgId && session.abortedAt === null) {
                session.abortedAt = now
                ended.sessions++
              }
            }
            for (const workflow of db.workflowTables.workflows.values()) {
              if (workflow.orgId === orgId && workflow.lifecycle !== "archived") {
                workflow.lifecycle = "archived"
                workflow.nextRunAt = null
                ended.workflows++
              }
            }
            const workerIds = orgWorkerIds(orgId)
            for (const worker of db.workers.values()) {
              if (workerIds.has(worker.id) && worker.status !== "retired" && worker.status !== "revoked") {
                db.workers.set(worker.id, { ...worker, status: "revoked", updatedAt: new Date(now).toISOString() })
                ended.workers++
              }
            }
            for (const credential of db.credentials.values()) {
              if (workerIds.has(credential.workerId) && credential.revokedAt === null) {
                db.credentials.set(credential.id, { ...credential, revokedAt: new Date(now).toISOString() })
                ended.workerCredentials++
              }
            }
            const keys = yield* byok.list(orgId)
            for (const key of keys) yield* Effect.ignore(byok.remove(orgId, key.provider))
            ended.byokKeys = keys.length
            PubSub.publishUnsafe<Revocation>(db.revocations, { kind: "org", id: orgId })
            return offboardingReport(orgId, new Date(offboardedAt.get(orgId)!), ended, yield* activity(orgId))
          })
      })
    })
  )
}
