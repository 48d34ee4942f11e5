import { Api } from "@cowork/domain"
import {
  PgArtifacts,
  PgChangeFeed,
  PgCommandQueue,
  PgControlPlaneStatus,
  PgDeploymentMarkers,
  PgEventLog,
  PgHeartbeats,
  PgAudit,
  PgByokStore,
  PgChannelStore,
  PgDeliveryFeed,
  PgIdentity,
  PgOffboarding,
  PgProjections,
  PgQuotas,
  PgQueueControls,
  PgSessionStore,
  PgThreads,
  PgTokens,
  PgUsage,
  PgWorkerRegistry,
  PgWorkflowStore
} from "@cowork/postgres"
import { ListenHost, NodeServer, RateLimiter } from "@cowork/services"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { ObjectStoreConfig } from "@cowork/storage"
import { Config, Effect, type FileSystem, Layer, type Path } from "effect"
import { type Etag, type HttpPlatform, HttpRouter, type HttpServer, type HttpServerError } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import * as ApiTokenHandlers from "./ApiTokenHandlers.ts"
import * as ArtifactHandlers from "./ArtifactHandlers.ts"
import * as AuditHandlers from "./AuditHandlers.ts"
import * as AuthenticationLive from "./AuthenticationLive.ts"
import * as AuthHandlers from "./AuthHandlers.ts"
import * as ByokHandlers from "./ByokHandlers.ts"
import * as BrowserAuth from "./BrowserAuth.ts"
import * as ChannelHandlers from "./ChannelHandlers.ts"
import * as HealthHandlers from "./HealthHandlers.ts"
import * as MemberHandlers from "./MemberHandlers.ts"
import * as OperatorHandlers from "./OperatorHandlers.ts"
import * as OrgAdminHandlers from "./OrgAdminHandlers.ts"
import * as PolicyHandlers from "./PolicyHandlers.ts"
import * as QueueControlHandlers from "./QueueControlHandlers.ts"
import * as RequestGuard from "./RequestGuard.ts"
import * as QuotaPolicy from "./QuotaPolicy.ts"
import * as RequestLimits from "./RequestLimits.ts"
import * as SessionAskHandlers from "./SessionAskHandlers.ts"
import * as SessionHandlers from "./SessionHandlers.ts"
import * as ThreadHandlers from "./ThreadHandlers.ts"
import * as UsageHandlers from "./UsageHandlers.ts"
import * as WorkerAdminHandlers from "./WorkerAdminHandlers.ts"
import * as WorkflowRoutes from "./WorkflowRoutes.ts"
import * as Workbench from "./Workbench.ts"
import { SessionEventHub } from "./SessionEventHub.ts"
import { SseStreamCaps } from "./SseStreamCaps.ts"
import { TokenRevocations } from "./TokenRevocations.ts"
import { TokenVerifier } from "./TokenVerifier.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

/** Every route of the web role, derived from the one `Api` definition, plus `/openapi.json` and `/docs`. */
const routes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide([HealthHandlers.layer, SessionHandlers.layer, OperatorHandlers.layer, WorkerAdminHandlers.layer, ArtifactHandlers.layer]),
    Layer.provide(WorkflowRoutes.layer),
    Layer.provide([AuthHandlers.layer, MemberHandlers.layer, AuditHandlers.layer, PolicyHandlers.layer, UsageHandlers.layer]),
    Layer.provide(ByokHandlers.layer),
    Layer.provide(ApiTokenHandlers.layer),
    Layer.provide(OrgAdminHandlers.layer),
    Layer.provide(ChannelHandlers.layer),
    Layer.provide(SessionAskHandlers.layer),
    Layer.provide(ThreadHandlers.layer),
    Layer.provide(QueueControlHandlers.layer),
    Layer.provide(AuthenticationLive.layer),
    Layer.provide(TokenVerifier.layer),
    Layer.provide([BrowserAuth.layer, RequestLimits.layer, QuotaPolicy.layer]),
    Layer.provide(RateLimiter.layerMemory)
  ),
  HttpApiScalar.layer(Api, { path: "/docs" }),
  Workbench.layer,
  RequestGuard.layer
)

const serveWith = <E>(lifecycle: Layer.Layer<WebLifecycle, E>) =>
  WebLifecycle.drainOnShutdown.pipe(
    // RequestGuard writes the one log line per request (route template, not the raw URL).
    Layer.provideMerge(HttpRouter.serve(routes, { disableLogger: true })),
    // Merged (not only provided) so tests can read the streams' slots and hub subscriptions.
    Layer.provideMerge(Layer.mergeAll(SessionEventHub.layer, SseStreamCaps.layer, TokenRevocations.layer)),
    Layer.provideMerge(lifecycle)
  )

/**
 * The web role on a caller-provided `HttpServer`, its role from `OPEN_COWORK_CLOUD_ROLE` (default `web`). Draining
 * starts when the layer's scope begins to close (before the server stops): `/readyz` answers 503, SSE answers 503 +
 * `Retry-After`, and open streams end.
 */
export const layerServe = serveWith(WebLifecycle.layer)

/** `layerServe` for a process whose launcher knows its role (`cowork up` → `all`, `cowork web` → `web`). */
export const layerServeAs = (role: "web" | "all") => serveWith(WebLifecycle.layerRole(role))

/** The HTTP server on `OPEN_COWORK_CLOUD_HOST`:`OPEN_COWORK_CLOUD_PORT` (default 127.0.0.1:8787), with the configured HTTP timeouts (`NodeServer` in @cowork/services). */
export const layerNodeServer: Layer.Layer<
  HttpServer.HttpServer | HttpPlatform.HttpPlatform | Etag.Generator | FileSystem.FileSystem | Path.Path,
  Config.ConfigError | HttpServerError.ServeError
> = Layer.unwrap(Effect.gen(function*() {
  const port = yield* Config.Int("OPEN_COWORK_CLOUD_PORT").pipe(Config.withDefault(8787))
  const host = yield* ListenHost
  const graceMs = yield* Config.Int("OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS").pipe(Config.withDefault(30_000))
  return NodeServer.layerOn(port, { host, gracefulShutdownMs: graceMs })
}))

/**
 * The web role: needs the tenant services (`SessionStore`, `Tokens`, `EventLog`, `ChangeFeed`), the operator ones
 * (`Heartbeats`, `CommandQueue`, `Projections`, `ControlPlaneStatus`), and the process's one `Metrics` registry.
 */
const layer = layerServe.pipe(Layer.provide(layerNodeServer))

/** `layer` reporting the given process role on `/healthz`, `/livez`, `/readyz` and `/api/runtime/status`. */
export const layerAs = (role: "web" | "all") => layerServeAs(role).pipe(Layer.provide(layerNodeServer))

/** The Postgres-backed services the web role needs, given a `PgClient` and the process's `ObjectStore`. */
export const layerPgAdapters = Layer.mergeAll(
  PgSessionStore.layerConfig,
  PgTokens.layer,
  PgEventLog.layer,
  PgChangeFeed.layer,
  PgHeartbeats.layer,
  PgCommandQueue.layer,
  PgControlPlaneStatus.layer,
  PgDeploymentMarkers.layer,
  PgProjections.layer,
  PgWorkerRegistry.layer,
  PgArtifacts.layer,
  PgWorkflowStore.layerConfig,
  PgIdentity.layer,
  PgOffboarding.layer,
  PgAudit.layer,
  PgByokStore.layer,
  PgQuotas.layer,
  PgUsage.layer,
  PgThreads.layer,
  PgChannelStore.layer,
  PgDeliveryFeed.layerConfig,
  PgQueueControls.layer
)

/**
 * `layerPgAdapters` with the object store (artifact bytes; OPEN_COWORK_OBJECT_STORE_URI, default <dataDir>/objects)
 * and the secret adapter (probed by `/readyz`; OPEN_COWORK_CLOUD_SECRET_KEY_REF) from configuration.
 */
export const layerPgServices = layerPgAdapters.pipe(
  Layer.provideMerge(Layer.mergeAll(ObjectStoreConfig.layerConfig, LocalKeyFileSecretAdapter.layerConfig))
)

/** The web role over Postgres: requires only `PgClient` / `SqlClient`. */
export const layerPg = layer.pipe(Layer.provide(layerPgServices))
