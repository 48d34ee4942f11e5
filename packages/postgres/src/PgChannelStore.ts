import {
  type ChannelBinding,
  type ChannelCursor,
  type ChannelIdentity,
  type ChannelRoute,
  ClaimLost,
  Conflict,
  newChannelBindingId,
  newChannelIdentityId,
  newChannelRouteId,
  NotFound,
  type ProviderEventClaim,
  type ProviderEventKind
} from "@cowork/domain"
import { ChannelStore } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

interface BindingRow {
  readonly id: string
  readonly org_id: string
  readonly provider_kind: ChannelBinding["providerKind"]
  readonly provider_id: string
  readonly display_name: string
  readonly status: ChannelBinding["status"]
  readonly status_detail: string | null
  readonly settings: Record<string, unknown>
  readonly credential_ref: string | null
  readonly inbound_credential_ref: string | null
  readonly external_target: string
  readonly inbound_policy: ChannelBinding["inboundPolicy"]
  readonly created_at: Date
  readonly updated_at: Date
}

const bindingView = (row: BindingRow): ChannelBinding => ({
  id: row.id,
  orgId: row.org_id,
  providerKind: row.provider_kind,
  providerId: row.provider_id,
  displayName: row.display_name,
  status: row.status,
  statusDetail: row.status_detail,
  settings: row.settings ?? {},
  credentialRef: row.credential_ref,
  inboundCredentialRef: row.inbound_credential_ref,
  externalTarget: row.external_target,
  inboundPolicy: row.inbound_policy,
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString()
})

interface RouteRow {
  readonly id: string
  readonly channel_binding_id: string
  readonly external_thread_id: string
  readonly session_id: string
  readonly origin: ChannelRoute["origin"]
  readonly created_at: Date
}

const routeView = (row: RouteRow): ChannelRoute => ({
  id: row.id,
  channelBindingId: row.channel_binding_id,
  externalThreadId: row.external_thread_id,
  sessionId: row.session_id,
  origin: row.origin,
  createdAt: new Date(row.created_at).toISOString()
})

interface IdentityRow {
  readonly id: string
  readonly provider_kind: ChannelIdentity["providerKind"]
  readonly provider_id: string
  readonly external_user_id: string
  readonly account_id: string
  readonly display_name: string | null
  readonly created_at: Date
}

const identityView = (row: IdentityRow): ChannelIdentity => ({
  id: row.id,
  providerKind: row.provider_kind,
  providerId: row.provider_id,
  externalUserId: row.external_user_id,
  accountId: row.account_id,
  displayName: row.display_name,
  createdAt: new Date(row.created_at).toISOString()
})

interface EventRow {
  readonly kind: ProviderEventKind
  readonly status: "claimed" | "completed"
  readonly claim_token: string | null
  readonly claim_expires_at: Date | null
  readonly outcome: string | null
  readonly live: boolean
}

interface CursorRow {
  readonly channel_binding_id: string
  readonly name: string
  readonly value: string
  readonly updated_at: Date
  readonly updated_by: string | null
}

const cursorView = (row: CursorRow): ChannelCursor => ({
  channelBindingId: row.channel_binding_id,
  name: row.name,
  value: row.value,
  updatedAt: new Date(row.updated_at).toISOString(),
  updatedBy: row.updated_by
})

const bindingNotFound = () => new NotFound({ message: "channel binding not found" })
const bindingClash = () => new Conflict({ message: "a binding for this provider id and target exists", details: { field: "externalTarget" } })

const isUniqueViolation = (error: unknown): boolean =>
  typeof error === "object" && error !== null && JSON.stringify(error).includes("23505")

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const bindingRow = (orgId: string, bindingId: string, lock = "") =>
    sql.unsafe<BindingRow>(`SELECT * FROM cloud_channel_bindings WHERE org_id = $1 AND id = $2 ${lock}`, [orgId, bindingId]).pipe(
      Effect.orDie,
      Effect.flatMap((rows) => (rows[0] === undefined ? Effect.fail(bindingNotFound()) : Effect.succeed(rows[0])))
    )

  const findRoute = (bindingId: string, externalThreadId: string) =>
    sql.unsafe<RouteRow>(
      `SELECT * FROM cloud_channel_routes WHERE channel_binding_id = $1 AND external_thread_id = $2`,
      [bindingId, externalThreadId]
    ).pipe(Effect.orDie, Effect.map((rows) => rows[0]))

  const insertRoute = (orgId: string, bindingId: string, externalThreadId: string, sessionId: string, origin: ChannelRoute["origin"]) =>
    sql.unsafe<RouteRow>(
      `INSERT INTO cloud_channel_routes (id, org_id, channel_binding_id, external_thread_id, session_id, origin)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (channel_binding_id, external_thread_id) DO NOTHING RETURNING *`,
      [newChannelRouteId(), orgId, bindingId, externalThreadId, sessionId, origin]
    ).pipe(Effect.orDie, Effect.map((rows) => rows[0]))

  const claimView = (bindingId: string, providerEventId: string, row: EventRow, status: ProviderEventClaim["status"], claimToken: string | null): ProviderEventClaim => ({
    channelBindingId: bindingId,
    providerEventId,
    kind: row.kind,
    status,
    claimToken,
    outcome: status === "claimed" ? null : row.outcome,
    claimExpiresAt: row.status === "claimed" && row.claim_expires_at !== null ? new Date(row.claim_expires_at).toISOString() : null
  })

  return ChannelStore.of({
    createBinding: Effect.fn("ChannelStore.createBinding")(function*(orgId, input) {
      const rows = yield* sql.unsafe<BindingRow>(
        `INSERT INTO cloud_channel_bindings (id, org_id, provider_kind, provider_id, display_name, status, settings, credential_ref,
           external_target, inbound_policy, inbound_credential_ref)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)
         ON CONFLICT (org_id, provider_id, external_target) DO NOTHING RETURNING *`,
        [
          newChannelBindingId(),
          orgId,
          input.providerKind,
          input.providerId,
          input.displayName,
          input.status ?? "active",
          JSON.stringify(input.settings ?? {}),
          input.credentialRef ?? null,
          input.externalTarget,
          input.inboundPolicy ?? "open",
          input.inboundCredentialRef ?? null
        ]
      ).pipe(Effect.orDie)
      if (rows[0] === undefined) return yield* bindingClash()
      return bindingView(rows[0])
    }),
    listBindings: Effect.fn("ChannelStore.listBindings")(function*(orgId, bindingIds) {
      const rows = yield* sql.unsafe<BindingRow>(
        `SELECT * FROM cloud_channel_bindings WHERE org_id = $1 AND ($2::text[] IS NULL OR id = ANY($2::text[]))
         ORDER BY created_at, id`,
        [orgId, bindingIds === undefined ? null : [...bindingIds]]
      ).pipe(Effect.orDie)
      return rows.map(bindingView)
    }),
    getBinding: (orgId, bindingId) => Effect.map(bindingRow(orgId, bindingId), bindingView),
    updateBinding: Effect.fn("ChannelStore.updateBinding")(function*(orgId, bindingId, patch) {
      yield* bindingRow(orgId, bindingId)
      const has = (value: unknown) => value !== undefined
      const rows = yield* sql.unsafe<BindingRow>(
        `UPDATE cloud_channel_bindings SET
           display_name = COALESCE($3, display_name),
           external_target = COALESCE($4, external_target),
           status = COALESCE($5, status),
           status_detail = CASE WHEN $6 THEN $7 ELSE status_detail END,
           settings = COALESCE($8::jsonb, settings),
           credential_ref = CASE WHEN $9 THEN $10 ELSE credential_ref END,
           inbound_policy = COALESCE($11, inbound_policy),
           inbound_credential_ref = CASE WHEN $12 THEN $13 ELSE inbound_credential_ref END,
           updated_at = now()
         WHERE org_id = $1 AND id = $2 RETURNING *`,
        [
          orgId,
          bindingId,
          patch.displayName ?? null,
          patch.externalTarget ?? null,
          patch.status ?? null,
          has(patch.statusDetail),
          patch.statusDetail ?? null,
          patch.settings === undefined ? null : JSON.stringify(patch.settings),
          has(patch.credentialRef),
          patch.credentialRef ?? null,
          patch.inboundPolicy ?? null,
          has(patch.inboundCredentialRef),
          patch.inboundCredentialRef ?? null
        ]
      ).pipe(
        Effect.catch((error) => (isUniqueViolation(error) ? Effect.fail(bindingClash()) : Effect.die(error)))
      )
      if (rows[0] === undefined) return yield* bindingNotFound()
      return bindingView(rows[0])
    }),
    deleteBinding: Effect.fn("ChannelStore.deleteBinding")(function*(orgId, bindingId) {
      const rows = yield* sql.unsafe<BindingRow>(
        `DELETE FROM cloud_channel_bindings WHERE org_id = $1 AND id = $2 RETURNING *`,
        [orgId, bindingId]
      ).pipe(Effect.orDie)
      if (rows[0] === undefined) return yield* bindingNotFound()
      return bindingView(rows[0])
    }),

    listRoutes: Effect.fn("ChannelStore.listRoutes")(function*(orgId, bindingId) {
      yield* bindingRow(orgId, bindingId)
      const rows = yield* sql.unsafe<RouteRow>(
        `SELECT * FROM cloud_channel_routes WHERE channel_binding_id = $1 ORDER BY created_at, id`,
        [bindingId]
      ).pipe(Effect.orDie)
      return rows.map(routeView)
    }),
    bindSession: Effect.fn("ChannelStore.bindSession")(function*(orgId, bindingId, externalThreadId, sessionId) {
      yield* bindingRow(orgId, bindingId)
      const session = yield* sql.unsafe(`SELECT 1 FROM cloud_sessions WHERE org_id = $1 AND id = $2`, [orgId, sessionId]).pipe(Effect.orDie)
      if (session.length === 0) return yield* new NotFound({ message: "session not found" })
      const row = yield* insertRoute(orgId, bindingId, externalThreadId, sessionId, "explicit")
      if (row === undefined) {
        return yield* new Conflict({ message: "this thread is already bound to a session", details: { field: "externalThreadId" } })
      }
      return routeView(row)
    }),
    unbindSession: Effect.fn("ChannelStore.unbindSession")(function*(orgId, bindingId, routeId) {
      yield* bindingRow(orgId, bindingId)
      const rows = yield* sql.unsafe<RouteRow>(
        `DELETE FROM cloud_channel_routes WHERE channel_binding_id = $1 AND id = $2 RETURNING *`,
        [bindingId, routeId]
      ).pipe(Effect.orDie)
      if (rows[0] === undefined) return yield* new NotFound({ message: "route not found" })
      return routeView(rows[0])
    }),
    routeFor: (orgId, bindingId, externalThreadId, createSession) =>
      Effect.gen(function*() {
        yield* bindingRow(orgId, bindingId)
        const existing = yield* findRoute(bindingId, externalThreadId)
        if (existing !== undefined) return { route: routeView(existing), created: false }
        // The thread's first message: the binding row lock serializes concurrent first messages, so the session
        // and its route commit together and a second replica finds the route instead of making another session.
        return yield* sql.withTransaction(Effect.gen(function*() {
          yield* bindingRow(orgId, bindingId, "FOR UPDATE")
          const raced = yield* findRoute(bindingId, externalThreadId)
          if (raced !== undefined) return { route: routeView(raced), created: false }
          const session = yield* createSession
          const row = yield* insertRoute(orgId, bindingId, externalThreadId, session.id, "first_message")
          return { route: routeView(row!), created: true }
        })).pipe(Effect.catchTag("SqlError", Effect.die))
      }).pipe(Effect.withSpan("ChannelStore.routeFor")),

    createIdentity: Effect.fn("ChannelStore.createIdentity")(function*(orgId, input) {
      const rows = yield* sql.unsafe<IdentityRow>(
        `INSERT INTO cloud_channel_identities (id, org_id, provider_kind, provider_id, external_user_id, account_id, display_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (org_id, provider_kind, provider_id, external_user_id) DO NOTHING RETURNING *`,
        [newChannelIdentityId(), orgId, input.providerKind, input.providerId, input.externalUserId, input.accountId, input.displayName ?? null]
      ).pipe(Effect.orDie)
      if (rows[0] === undefined) {
        return yield* new Conflict({ message: "this external user is already linked", details: { field: "externalUserId" } })
      }
      return identityView(rows[0])
    }),
    listIdentities: Effect.fn("ChannelStore.listIdentities")(function*(orgId) {
      const rows = yield* sql.unsafe<IdentityRow>(
        `SELECT * FROM cloud_channel_identities WHERE org_id = $1 ORDER BY created_at, id`,
        [orgId]
      ).pipe(Effect.orDie)
      return rows.map(identityView)
    }),
    deleteIdentity: Effect.fn("ChannelStore.deleteIdentity")(function*(orgId, identityId) {
      const rows = yield* sql.unsafe<IdentityRow>(
        `DELETE FROM cloud_channel_identities WHERE org_id = $1 AND id = $2 RETURNING *`,
        [orgId, identityId]
      ).pipe(Effect.orDie)
      if (rows[0] === undefined) return yield* new NotFound({ message: "identity not found" })
      return identityView(rows[0])
    }),
    findIdentity: Effect.fn("ChannelStore.findIdentity")(function*(orgId, providerKind, providerId, externalUserId) {
      const rows = yield* sql.unsafe<IdentityRow>(
        `SELECT * FROM cloud_channel_identities
         WHERE org_id = $1 AND provider_kind = $2 AND provider_id = $3 AND external_user_id = $4`,
        [orgId, providerKind, providerId, externalUserId]
      ).pipe(Effect.orDie)
      return rows[0] === undefined ? undefined : identityView(rows[0])
    }),

    claimProviderEvent: Effect.fn("ChannelStore.claimProviderEvent")(function*(orgId, input) {
      yield* bindingRow(orgId, input.channelBindingId)
      const token = globalThis.crypto.randomUUID()
      // Insert, or take over an expired claim; a live claim or a completed event is left alone. ONE statement, so
      // two replicas racing on the same event cannot both win. A signature is claimed the same way: completed once
      // its request was handled, released (or left to expire) when it was not, so a provider's retry is accepted.
      const won = yield* sql.unsafe<EventRow>(
        `INSERT INTO cloud_channel_provider_events AS e
           (org_id, channel_binding_id, provider_event_id, kind, status, claim_token, claim_expires_at, claimed_by)
         VALUES ($1, $2, $3, $4, 'claimed', $5, now() + $6::float8 * interval '1 millisecond', $7)
         ON CONFLICT (channel_binding_id, provider_event_id) DO UPDATE SET
           claim_token = EXCLUDED.claim_token, claim_expires_at = EXCLUDED.claim_expires_at, claimed_by = EXCLUDED.claimed_by
         WHERE e.status = 'claimed' AND e.claim_expires_at <= now()
         RETURNING e.kind, e.status, e.claim_token, e.claim_expires_at, e.outcome, true AS live`,
        [orgId, input.channelBindingId, input.providerEventId, input.kind, token, input.ttlMs, input.claimedBy]
      ).pipe(Effect.orDie)
      if (won[0] !== undefined) return claimView(input.channelBindingId, input.providerEventId, won[0], "claimed", token)
      const rows = yield* sql.unsafe<EventRow>(
        `SELECT kind, status, claim_token, claim_expires_at, outcome, (claim_expires_at > now()) AS live
         FROM cloud_channel_provider_events WHERE channel_binding_id = $1 AND provider_event_id = $2`,
        [input.channelBindingId, input.providerEventId]
      ).pipe(Effect.orDie)
      const row = rows[0]!
      return claimView(input.channelBindingId, input.providerEventId, row, row.status === "completed" ? "completed" : "in_progress", null)
    }),
    completeProviderEvent: Effect.fn("ChannelStore.completeProviderEvent")(function*(orgId, input) {
      yield* bindingRow(orgId, input.channelBindingId)
      const released = input.outcome === "released"
      const rows = yield* sql.unsafe<EventRow>(
        released
          ? `DELETE FROM cloud_channel_provider_events
             WHERE channel_binding_id = $1 AND provider_event_id = $2 AND status = 'claimed' AND claim_token = $3
               AND claim_expires_at > now() AND $4::text = 'released'
             RETURNING kind, status, claim_token, claim_expires_at, $4::text AS outcome, false AS live`
          : `UPDATE cloud_channel_provider_events SET status = 'completed', outcome = $4, claim_token = NULL,
               claim_expires_at = NULL, completed_at = now()
             WHERE channel_binding_id = $1 AND provider_event_id = $2 AND status = 'claimed' AND claim_token = $3
               AND claim_expires_at > now()
             RETURNING kind, status, claim_token, claim_expires_at, outcome, false AS live`,
        [input.channelBindingId, input.providerEventId, input.claimToken, input.outcome]
      ).pipe(Effect.orDie)
      if (rows[0] !== undefined) {
        return released
          ? { ...claimView(input.channelBindingId, input.providerEventId, rows[0], "released", null), claimExpiresAt: null }
          : claimView(input.channelBindingId, input.providerEventId, rows[0], "completed", null)
      }
      const current = yield* sql.unsafe<EventRow>(
        `SELECT kind, status, claim_token, claim_expires_at, outcome, (claim_expires_at > now()) AS live
         FROM cloud_channel_provider_events WHERE channel_binding_id = $1 AND provider_event_id = $2`,
        [input.channelBindingId, input.providerEventId]
      ).pipe(Effect.orDie)
      const row = current[0]
      const reason = row === undefined || row.status !== "claimed" ? "not_claimed" : row.claim_token !== input.claimToken ? "reclaimed" : "expired"
      return yield* new ClaimLost({ kind: "provider_event", id: input.providerEventId, reason })
    }),

    pruneProviderEvents: Effect.fn("ChannelStore.pruneProviderEvents")(function*(retention) {
      const rows = yield* sql.unsafe<{ n: string }>(
        `WITH doomed AS (
           (SELECT channel_binding_id, provider_event_id FROM cloud_channel_provider_events
            WHERE status = 'completed' AND completed_at < now() - $1::float8 * interval '1 millisecond' AND kind = 'signature'
            LIMIT $3)
           UNION ALL
           (SELECT channel_binding_id, provider_event_id FROM cloud_channel_provider_events
            WHERE status = 'completed' AND completed_at < now() - $2::float8 * interval '1 millisecond' AND kind <> 'signature'
            LIMIT $3)
           UNION ALL
           (SELECT channel_binding_id, provider_event_id FROM cloud_channel_provider_events
            WHERE status = 'claimed' AND claim_expires_at < now() - $2::float8 * interval '1 millisecond'
            LIMIT $3)
           LIMIT $3
         ), gone AS (
           DELETE FROM cloud_channel_provider_events e USING doomed d
           WHERE e.channel_binding_id = d.channel_binding_id AND e.provider_event_id = d.provider_event_id
           RETURNING 1
         )
         SELECT count(*)::text AS n FROM gone`,
        [retention.signatureRetentionMs, retention.eventRetentionMs, retention.limit]
      ).pipe(Effect.orDie)
      return Number(rows[0]?.n ?? 0)
    }),
    listCursors: Effect.fn("ChannelStore.listCursors")(function*(orgId, bindingIds) {
      const rows = yield* sql.unsafe<CursorRow>(
        `SELECT * FROM cloud_channel_cursors WHERE org_id = $1 AND ($2::text[] IS NULL OR channel_binding_id = ANY($2::text[]))
         ORDER BY channel_binding_id, name`,
        [orgId, bindingIds === undefined ? null : [...bindingIds]]
      ).pipe(Effect.orDie)
      return rows.map(cursorView)
    }),
    putCursor: Effect.fn("ChannelStore.putCursor")(function*(orgId, write, updatedBy) {
      yield* bindingRow(orgId, write.channelBindingId)
      const conditional = write.expectedValue !== undefined
      const rows = yield* sql.unsafe<CursorRow>(
        conditional && write.expectedValue === null
          ? `INSERT INTO cloud_channel_cursors (org_id, channel_binding_id, name, value, updated_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel_binding_id, name) DO NOTHING RETURNING *`
          : conditional
          ? `UPDATE cloud_channel_cursors SET value = $4, updated_by = $5, updated_at = now()
             WHERE org_id = $1 AND channel_binding_id = $2 AND name = $3 AND value = $6 RETURNING *`
          : `INSERT INTO cloud_channel_cursors (org_id, channel_binding_id, name, value, updated_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel_binding_id, name) DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()
             RETURNING *`,
        [orgId, write.channelBindingId, write.name, write.value, updatedBy, ...(conditional && write.expectedValue !== null ? [write.expectedValue] : [])]
      ).pipe(Effect.orDie)
      if (rows[0] === undefined) {
        return yield* new Conflict({ message: "the cursor moved: read it again", details: { field: "expectedValue", name: write.name } })
      }
      return cursorView(rows[0])
    }),

    grantGatewayToken: Effect.fn("ChannelStore.grantGatewayToken")(function*(orgId, tokenId, bindingIds) {
      const unique = [...new Set(bindingIds)]
      const owned = yield* sql.unsafe<{ id: string }>(
        `SELECT id FROM cloud_channel_bindings WHERE org_id = $1 AND id = ANY($2::text[])`,
        [orgId, unique]
      ).pipe(Effect.orDie)
      if (owned.length !== unique.length) return yield* bindingNotFound()
      yield* sql.unsafe(
        `INSERT INTO cloud_channel_gateway_tokens (token_id, org_id, channel_binding_id)
         SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
        [tokenId, orgId, unique]
      ).pipe(Effect.orDie)
    }),
    gatewayBindings: Effect.fn("ChannelStore.gatewayBindings")(function*(orgId, tokenId) {
      const rows = yield* sql.unsafe<{ channel_binding_id: string }>(
        `SELECT channel_binding_id FROM cloud_channel_gateway_tokens WHERE org_id = $1 AND token_id = $2 ORDER BY channel_binding_id`,
        [orgId, tokenId]
      ).pipe(Effect.orDie)
      return rows.map((row) => row.channel_binding_id)
    }),
    listGatewayGrants: Effect.fn("ChannelStore.listGatewayGrants")(function*(orgId) {
      const rows = yield* sql.unsafe<{ token_id: string; channel_binding_id: string }>(
        `SELECT token_id, channel_binding_id FROM cloud_channel_gateway_tokens WHERE org_id = $1 ORDER BY token_id, channel_binding_id`,
        [orgId]
      ).pipe(Effect.orDie)
      const grants = new Map<string, Array<string>>()
      for (const row of rows) grants.set(row.token_id, [...(grants.get(row.token_id) ?? []), row.channel_binding_id])
      return grants
    })
  })
})

export const layer = Layer.effect(ChannelStore, make)
