/**
 * The one place a metric is declared. The Prometheus registry, the Grafana dashboard and the alert rules are
 * all checked against this catalog; a metric or label that is not here does not exist.
 *
 * Every label value is drawn from a closed list (never an id, never a raw path), so cardinality is bounded
 * and no value can carry a secret. The `role` label is common to every metric and filled in by the registry
 * from the process role; callers never pass it.
 */

import { StaleOwnerOperation } from "@cowork/domain"

export const ROLES = ["web", "worker", "scheduler", "gateway", "all"] as const
export type Role = (typeof ROLES)[number]

export const ROLE_LABEL = "role"

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"] as const

export const HTTP_STATUSES = [
  "200", "201", "202", "204", "206", "301", "302", "304", "307", "308",
  "400", "401", "403", "404", "405", "406", "408", "409", "410", "411", "412", "413", "415", "416", "422", "429",
  "499", "500", "501", "502", "503", "504", "other"
] as const

/** Label for requests that matched no route (404s, scanners): their raw path never becomes a label. */
export const UNMATCHED_ROUTE = "unmatched"

/**
 * Route templates as the routers declare them: exactly the API definition's paths, plus `/openapi.json` and `/docs`
 * (served beside it) and `unmatched` (apps/web/test/RouteCatalog.test.ts checks both directions). A new route is
 * added here with its endpoint.
 */
export const HTTP_ROUTES = [
  UNMATCHED_ROUTE,
  "/healthz",
  "/livez",
  "/readyz",
  "/metrics",
  "/api/metrics",
  "/openapi.json",
  "/docs",
  "/api/runtime/status",
  "/api/workers/heartbeats",
  "/api/diagnostics",
  "/api/config",
  "/api/workspace",
  "/api/events",
  "/api/sessions",
  "/api/sessions/:id",
  "/api/sessions/:id/view",
  "/api/sessions/:id/prompt",
  "/api/sessions/:id/events",
  "/api/sessions/:id/abort",
  "/api/sessions/:id/projection-status",
  "/api/sessions/:id/projection-repair",
  "/api/sessions/:id/artifacts",
  "/api/sessions/:id/artifacts/:aid",
  "/api/artifacts",
  "/api/byok",
  "/api/byok/:provider",
  "/api/byok/:provider/validate",
  "/api/workflows",
  "/api/workflows/:id",
  "/api/workflows/:id/run",
  "/api/workflows/:id/pause",
  "/api/workflows/:id/resume",
  "/api/workflows/:id/archive",
  "/api/workflows/:id/runs",
  "/api/workflows/:id/triggers/:tid/rotate-secret",
  "/webhooks/workflows/:id",
  "/api/admin/worker-pools",
  "/api/admin/worker-pools/:id",
  "/api/admin/workers",
  "/api/admin/workers/:id/activate",
  "/api/admin/workers/:id/pause",
  "/api/admin/workers/:id/drain",
  "/api/admin/workers/:id/resume",
  "/api/admin/workers/:id/retire",
  "/api/admin/workers/:id/revoke",
  "/api/admin/workers/:id/credentials",
  "/api/admin/workers/:id/credentials/:cid/rotate",
  "/api/admin/workers/:id/credentials/:cid/revoke",
  "/api/admin/audit",
  "/auth/login",
  "/auth/callback",
  "/auth/logout",
  "/auth/token-login",
  "/api/members",
  "/api/members/:id",
  "/api/members/:id/sessions",
  "/api/api-tokens",
  "/api/api-tokens/:id",
  "/api/admin/policy",
  "/api/usage/summary",
  "/api/usage/events",
  "/api/channels/bindings",
  "/api/channels/bindings/:id",
  "/api/channels/bindings/:id/status",
  "/api/channels/bindings/:id/sessions",
  "/api/channels/bindings/:id/sessions/:rid",
  "/api/channels/bindings/:id/prompt",
  "/api/channels/bindings/:id/inbound",
  "/api/channels/bindings/:id/answer",
  "/api/channels/bindings/:id/answer/check",
  "/api/channels/provider-events/claim",
  "/api/channels/provider-events/complete",
  "/api/channels/identities",
  "/api/channels/identities/:id",
  "/api/channels/identities/resolve",
  "/api/channels/deliveries",
  "/api/channels/deliveries/stream",
  "/api/channels/deliveries/claim",
  "/api/channels/deliveries/ack",
  "/api/channels/deliveries/:id",
  "/api/channels/deliveries/:id/ack",
  "/api/channels/deliveries/:id/renew",
  "/api/channels/deliveries/:id/retry",
  "/api/channels/deliveries/:id/dead-letter",
  "/api/channels/cursors",
  "/api/channels/gateway",
  "/api/channels/gateway-tokens",
  "/api/sessions/:id/permission-respond",
  "/api/sessions/:id/question-reply",
  "/api/sessions/:id/question-reject",
  "/api/threads",
  "/api/threads/tags",
  "/api/threads/smart-filters",
  "/api/admin/orgs/:id/offboard",
  "/api/sessions/:id/retry",
  "/api/admin/commands/:id/dead-letter"
] as const

export type HttpRoute = (typeof HTTP_ROUTES)[number]

/** The `operation` label of a stale-owner refusal: exactly the domain's closed `StaleOwner.operation` union. */
export const STALE_OWNER_OPERATIONS = StaleOwnerOperation.literals

/**
 * A label whose values an operator configures at start rather than the code listing them (the gateway's provider
 * ids): bounded by a pattern that admits neither ids nor secrets and by a count per process.
 */
export interface ConfiguredLabel {
  readonly pattern: RegExp
  readonly maxValues: number
}

export const isConfiguredLabel = (values: ReadonlyArray<string> | ConfiguredLabel): values is ConfiguredLabel => !Array.isArray(values)

type LabelSpec = Readonly<Record<string, ReadonlyArray<string> | ConfiguredLabel>>

export interface CounterSpec<L extends LabelSpec = LabelSpec> {
  readonly type: "counter"
  readonly help: string
  readonly labels: L
}

export interface GaugeSpec<L extends LabelSpec = LabelSpec> {
  readonly type: "gauge"
  readonly help: string
  readonly labels: L
  /** A count of things held open (0 is a true reading before the first one): exported as 0 from start. */
  readonly zeroAtStart?: true
}

export interface HistogramSpec<L extends LabelSpec = LabelSpec> {
  readonly type: "histogram"
  readonly help: string
  readonly labels: L
  readonly buckets: ReadonlyArray<number>
}

export type MetricSpec = CounterSpec | GaugeSpec | HistogramSpec
export type MetricType = MetricSpec["type"]

type NoLabels = Readonly<Record<never, never>>

function counter(help: string): CounterSpec<NoLabels>
function counter<const L extends LabelSpec>(help: string, labels: L): CounterSpec<L>
function counter(help: string, labels: LabelSpec = {}): CounterSpec {
  return { type: "counter", help, labels }
}

function gauge(help: string): GaugeSpec<NoLabels>
function gauge<const L extends LabelSpec>(help: string, labels: L): GaugeSpec<L>
function gauge(help: string, labels: LabelSpec = {}): GaugeSpec {
  return { type: "gauge", help, labels }
}

function histogram(help: string, buckets: ReadonlyArray<number>): HistogramSpec<NoLabels>
function histogram<const L extends LabelSpec>(help: string, buckets: ReadonlyArray<number>, labels: L): HistogramSpec<L>
function histogram(help: string, buckets: ReadonlyArray<number>, labels: LabelSpec = {}): HistogramSpec {
  return { type: "histogram", help, buckets, labels }
}

/** Bucket sets in milliseconds, chosen for what each operation costs when healthy and when it is not. */
export const Buckets = {
  /** An HTTP request: most answer in a few ms; SSE setup and exports can take seconds. */
  httpRequest: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  /** One small write transaction (insert command + NOTIFY, create session rows). */
  singleWrite: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
  /** A `FOR UPDATE SKIP LOCKED` claim query: sub-ms on an idle table, seconds under lock contention. */
  claim: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
  /** One worker loop iteration: claim, run commands, ack; agent turns can take minutes. */
  workerLoop: [10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000],
  /** One object-store call: sub-ms on a local disk, tens of ms to S3, seconds when the store struggles. */
  objectStore: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]
} as const

/** The gateway's channel kinds and provider states (packages/channels declares the same lists). */
const GATEWAY_PROVIDER_KINDS = ["telegram", "slack", "email", "webhook"] as const
const GATEWAY_PROVIDER_STATES = ["starting", "healthy", "degraded", "auth_failed", "down"] as const
/** A gateway provider id as OPEN_COWORK_GATEWAY_PROVIDERS names it (at most 32 per gateway). */
const GATEWAY_PROVIDER_ID: ConfiguredLabel = { pattern: /^[a-z0-9][a-z0-9-]{0,39}$/, maxValues: 32 }
const gatewayProvider = { provider_id: GATEWAY_PROVIDER_ID, provider_kind: GATEWAY_PROVIDER_KINDS }

const OBJECT_STORE_OPERATIONS = ["get", "put", "head", "delete", "list"] as const
const OBJECT_STORE_KINDS = ["file", "s3", "memory"] as const

export const MetricsCatalog = {
  open_cowork_cloud_http_requests_total: counter("HTTP requests answered, by method, status and route template.", {
    method: HTTP_METHODS,
    status: HTTP_STATUSES,
    route: HTTP_ROUTES
  }),
  open_cowork_cloud_http_request_duration_ms: histogram(
    "HTTP request duration in milliseconds, by method and route template.",
    Buckets.httpRequest,
    { method: HTTP_METHODS, route: HTTP_ROUTES }
  ),
  open_cowork_cloud_sse_connections: {
    ...gauge("Open SSE connections held by this web process.", { stream: ["session", "workspace", "delivery"] }),
    zeroAtStart: true
  },
  open_cowork_cloud_command_queue_depth_estimate: gauge(
    "Pending commands seen by the last bounded worker scan; an estimate, read it with oldest age and claim latency."
  ),
  open_cowork_cloud_command_oldest_age_ms: gauge(
    "Age in milliseconds of the oldest pending command seen by the last worker scan (0 when none)."
  ),
  open_cowork_cloud_prompt_enqueue_duration_ms: histogram(
    "Time to accept a prompt: insert the command and NOTIFY in one transaction.",
    Buckets.singleWrite
  ),
  open_cowork_cloud_session_create_duration_ms: histogram(
    "Time to create a session with its projection and lease rows.",
    Buckets.singleWrite
  ),
  open_cowork_cloud_runnable_session_claim_duration_ms: histogram(
    "Time of one runnable-session claim query (FOR UPDATE SKIP LOCKED), whether or not it claimed anything.",
    Buckets.claim
  ),
  open_cowork_cloud_worker_loop_duration_ms: histogram(
    "Duration of one worker loop iteration for a leased session: claim to last ack or release.",
    Buckets.workerLoop
  ),
  open_cowork_cloud_worker_lease_claims_total: counter("Session leases claimed by this worker (each claim bumps the epoch)."),
  open_cowork_cloud_worker_lease_renewals_total: counter("Successful lease renewals by this worker."),
  open_cowork_cloud_worker_lease_denials_total: counter("Lease claims or renewals refused, by reason.", {
    reason: ["renewal_lost"]
  }),
  open_cowork_cloud_worker_expired_leases_reaped_total: counter(
    "Expired leases recovered by the reaper; their running command went back to pending or dead.",
    { outcome: ["requeued", "dead", "idle"] }
  ),
  open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total: counter(
    "Reaper ticks that stopped at OPEN_COWORK_CLOUD_REAPER_DRAIN_CAP with expired leases possibly left over."
  ),
  open_cowork_cloud_worker_stale_owner_rejections_total: counter(
    "Owner writes rejected because the (session, epoch) was no longer the live lease; never applied.",
    { operation: STALE_OWNER_OPERATIONS }
  ),
  open_cowork_cloud_worker_commands_processed_total: counter("Command runs finished by this worker, by outcome.", {
    status: ["acked", "failed", "cancelled", "requeued", "dead"]
  }),
  open_cowork_cloud_worker_checkpoint_failures_total: counter(
    "Failed checkpoint attempts by this worker (each retry counted): a failed save holds the ack, a failed restore the session's next command.",
    { operation: ["save", "restore"] }
  ),
  open_cowork_cloud_worker_heartbeat_age_ms: gauge(
    "Milliseconds since this process last wrote its heartbeat successfully."
  ),
  open_cowork_cloud_worker_heartbeat_interval_ms: gauge(
    "Milliseconds until this worker's next heartbeat: the heartbeat interval while it holds a session, the idle interval otherwise (alerts compare the age with it)."
  ),
  open_cowork_cloud_projection_lag_events: gauge(
    "Largest gap seen between a session's last event sequence and its projection's last_sequence."
  ),
  open_cowork_cloud_worker_shutdown_drains_total: counter(
    "Graceful shutdown drains, by whether active sessions finished within OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS.",
    { outcome: ["completed", "grace_expired"] }
  ),
  open_cowork_cloud_object_store_operations_total: counter(
    "Object-store calls (artifacts, checkpoint save/restore), by outcome; a missing key is an answer (ok), not an error.",
    { operation: OBJECT_STORE_OPERATIONS, status: ["ok", "error"], cloud_object_store_kind: OBJECT_STORE_KINDS }
  ),
  open_cowork_cloud_object_store_operation_duration_ms: histogram(
    "Object-store call duration in milliseconds (a get until its body starts, not the whole download).",
    Buckets.objectStore,
    { operation: OBJECT_STORE_OPERATIONS, cloud_object_store_kind: OBJECT_STORE_KINDS }
  ),
  open_cowork_cloud_auth_failures_total: counter("Requests refused by authentication or authorization, by reason.", {
    reason: ["missing_credentials", "invalid_token", "expired_token", "revoked_token", "forbidden_scope", "forbidden_principal"]
  }),
  open_cowork_cloud_scheduler_claims_total: counter("Due workflows claimed by this scheduler (each claim bumps the workflow's claim epoch)."),
  open_cowork_cloud_scheduler_claim_renewals_total: counter("Claim renewals of a batch that ran longer than a third of the claim TTL."),
  open_cowork_cloud_scheduler_runs_started_total: counter(
    "Workflow runs this process started (run row, session and prompt in one transaction), by trigger.",
    { trigger: ["schedule", "manual", "webhook"] }
  ),
  open_cowork_cloud_scheduler_slots_total: counter(
    "Schedule slots decided by this scheduler, by outcome: started, buffered (buffer_one), skipped by the overlap policy, skipped as missed (outside the catch-up window), skipped because the org's workflow_runs_per_hour quota was used up, or already recorded by another claimer (never fired twice).",
    { outcome: ["started", "buffered", "skipped_overlap", "skipped_missed", "skipped_quota", "duplicate"] }
  ),
  open_cowork_cloud_scheduler_failures_total: counter("Scheduler operations that failed, by operation (a stale claim is refused, never applied).", {
    operation: ["claim", "fire", "stale_claim", "renew", "reap", "sync_outcomes", "heartbeat", "outlook", "prune"]
  }),
  open_cowork_cloud_scheduler_expired_claims_reaped_total: counter("Expired workflow claims cleared by the claim reaper."),
  open_cowork_cloud_scheduler_expired_claim_reaper_drain_cap_hits_total: counter(
    "Claim-reaper ticks that stopped at OPEN_COWORK_CLOUD_SCHEDULER_REAPER_DRAIN_CAP with expired claims possibly left over."
  ),
  open_cowork_cloud_scheduler_run_start_lag_ms: histogram(
    "Milliseconds from a slot's due time to its run's session prompt being enqueued (the run's commit).",
    [10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000]
  ),
  open_cowork_cloud_scheduler_due_queue_depth: gauge(
    "Active workflows due now and not claimed, seen by the last bounded scan (an estimate; 0 when the schedulers keep up)."
  ),
  open_cowork_cloud_scheduler_oldest_due_age_ms: gauge("Milliseconds the oldest due-but-unclaimed workflow has waited (last scan)."),
  open_cowork_cloud_scheduler_heartbeat_age_ms: gauge("Milliseconds since this scheduler last wrote its heartbeat successfully."),
  open_cowork_cloud_scheduler_heartbeat_interval_ms: gauge("Milliseconds until this scheduler's next heartbeat (its heartbeat row records it; alerts compare the age with it)."),
  open_cowork_cloud_webhook_rejections_total: counter("Workflow webhook deliveries refused, by reason.", {
    reason: ["missing_signature", "stale_timestamp", "bad_signature", "replayed", "body_too_large", "rate_limited", "not_found", "disabled"]
  }),
  open_cowork_cloud_webhook_deliveries_total: counter("Workflow webhook deliveries accepted (a run started)."),
  open_cowork_cloud_browser_auth_refusals_total: counter("Requests with a browser session cookie refused, by reason.", {
    reason: [
      "unknown_session", "expired_idle", "expired_absolute", "revoked_session", "no_membership", "csrf_rejected",
      "operator_route", "forbidden_scope", "source_token_revoked"
    ]
  }),
  open_cowork_cloud_sign_ins_total: counter("Sign-in attempts (OIDC callback, owner-token login), by method and outcome.", {
    method: ["oidc", "token_login"],
    outcome: ["ok", "refused", "not_a_member", "idp_unavailable"]
  }),
  open_cowork_cloud_rate_limited_total: counter(
    "Requests refused with 429 by the in-process limits: per principal, per org, or a source in authentication back-off.",
    { scope: ["principal", "org", "auth_backoff"] }
  ),
  open_cowork_cloud_quota_rejections_total: counter("Work refused because the org's quota was used up, by quota.", {
    quota: [
      "prompts_per_hour", "queued_commands", "concurrent_sessions", "active_workers", "artifact_bytes_per_day",
      "workflow_runs_per_hour", "channel_deliveries_per_hour"
    ]
  }),
  open_cowork_cloud_byok_reveal_failures_total: counter(
    "Model calls refused because the org's provider key could not be revealed (no key stored, unknown envelope key, tampered, secret adapter down).",
    { reason: ["not_configured", "unknown_key", "authentication_failed", "malformed", "unavailable"] }
  ),
  open_cowork_cloud_model_proxy_requests_total: counter(
    "Model calls the worker's loopback proxy forwarded to a provider, by whether the provider answered 2xx.",
    { status: ["ok", "error"] }
  ),
  open_cowork_cloud_model_proxy_tokens_total: counter(
    "Tokens the providers reported in answers forwarded by the model proxy, by direction.",
    { direction: ["input", "output"] }
  ),
  open_cowork_gateway_uptime_seconds: gauge("Seconds since this gateway process started."),
  open_cowork_gateway_providers: gauge("Channel providers configured in this gateway."),
  open_cowork_gateway_session_streams: {
    ...gauge("Push streams this gateway holds open to the cloud (the delivery wake-up stream)."),
    zeroAtStart: true
  },
  open_cowork_gateway_delivery_queue_depth_max: {
    ...gauge("Deliveries this gateway has claimed and not yet acked (the largest since the last claim)."),
    zeroAtStart: true
  },
  open_cowork_gateway_incoming_messages_total: counter("Inbound channel messages that passed signature checks."),
  open_cowork_gateway_prompted_messages_total: counter("Inbound messages that became a prompt on a bound session (a duplicate provider event is not counted)."),
  open_cowork_gateway_deliveries_received_total: counter("Deliveries claimed from the cloud's delivery feed."),
  open_cowork_gateway_deliveries_sent_total: counter("Deliveries a provider accepted and the cloud acked as sent."),
  open_cowork_gateway_delivery_retries_total: counter("Deliveries acked as failed (the cloud schedules the retry with backoff)."),
  open_cowork_gateway_delivery_dead_letters_total: counter("Deliveries acked as dead, or moved to dead by the cloud's attempt cap."),
  open_cowork_gateway_webhook_requests_total: counter("Requests to POST /webhooks/:providerId, by outcome.", {
    outcome: [
      "prompted", "duplicate", "ignored", "challenge", "missing_signature", "stale_timestamp", "bad_signature", "replayed",
      "bad_request", "body_too_large", "rate_limited", "auth_backoff", "unknown_provider", "unbound", "error", "selected", "overloaded"
    ]
  }),
  open_cowork_gateway_stream_reconnects_total: counter("Times the delivery wake-up stream to the cloud was opened again after it ended or failed."),
  open_cowork_gateway_errors_total: counter("Gateway operations that failed, by operation (a refused fenced ack is `stale_claim`; a binding credentialRef not resolved is `credential`).", {
    operation: ["claim", "renew", "ack", "stale_claim", "send", "stream", "inbound", "prompt", "probe", "credential"]
  }),
  open_cowork_gateway_delivery_latency_ms: histogram(
    "Milliseconds from the cloud's commit of the delivery (its event) to the provider accepting it.",
    [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000]
  ),
  open_cowork_gateway_provider_state: gauge("1 for the state each provider is in, 0 for the others.", {
    ...gatewayProvider,
    state: GATEWAY_PROVIDER_STATES
  }),
  open_cowork_gateway_provider_deliveries_sent_total: counter("Deliveries sent, by provider.", gatewayProvider),
  open_cowork_gateway_provider_delivery_retries_total: counter("Deliveries acked as failed, by provider.", gatewayProvider),
  open_cowork_gateway_provider_delivery_dead_letters_total: counter("Deliveries acked or moved to dead, by provider.", gatewayProvider),
  open_cowork_gateway_provider_incoming_messages_total: counter("Inbound messages accepted, by provider.", gatewayProvider),
  open_cowork_cloud_token_cache_lookups_total: counter(
    "API-token authentications by how the web process's verification cache answered: hit (no database read), miss (read and cached), bypass (the revocation listener is down: read, not cached).",
    { result: ["hit", "miss", "bypass"] }
  ),
  open_cowork_cloud_channel_deliveries_claimed_total: counter("Channel deliveries claimed by gateways through this web process (each claim is one attempt)."),
  open_cowork_cloud_channel_delivery_acks_total: counter(
    "Channel delivery acks accepted, by the delivery's resulting status (a failed ack at the attempt cap is dead).",
    { status: ["sent", "failed", "dead"] }
  ),
  open_cowork_cloud_channel_claim_lost_total: counter(
    "Fenced channel writes refused because the caller's claim expired or was taken over, by kind.",
    { kind: ["delivery", "provider_event"] }
  ),
  open_cowork_cloud_channel_expired_claims_reaped_total: counter(
    "Expired channel delivery claims returned to the feed, by outcome (dead: the attempt cap was reached).",
    { outcome: ["pending", "dead"] }
  ),
  open_cowork_cloud_channel_provider_events_pruned_total: counter(
    "Inbound provider-event claims deleted by retention (signatures past their window, completed updates and abandoned claims past 7 days)."
  ),
  open_cowork_cloud_channel_prompts_total: counter(
    "Inbound channel messages prompted, by result (duplicate: the provider event id was already prompted; answered: the text answered the ask the session waits on).",
    { result: ["prompted", "duplicate", "answered"] }
  ),
  open_cowork_cloud_sse_fanout_busy_ms_total: counter(
    "Milliseconds the web's main thread spent in the SSE session fan-out (synchronous: its CPU unless the process was preempted), by part: encode (rendering and encoding each read once per session, whatever its subscribers) and write (handing it to each subscriber's socket: one write per stream per read, the part that grows with subscribers).",
    { part: ["encode", "write"] }
  ),
  open_cowork_cloud_sse_stream_writes_total: counter(
    "Writes of event frames to SSE session streams by the fan-out (one per stream per read), and streams it ended for being too far behind (slow_consumer).",
    { outcome: ["written", "slow_consumer"] }
  )
} as const satisfies Record<string, MetricSpec>

type Catalog = typeof MetricsCatalog
export type MetricName = keyof Catalog

type NamesOfType<T extends MetricType> = { [N in MetricName]: Catalog[N]["type"] extends T ? N : never }[MetricName]
export type CounterName = NamesOfType<"counter">
export type GaugeName = NamesOfType<"gauge">
export type HistogramName = NamesOfType<"histogram">

/** The label set a call site passes for metric `N` (the `role` label is added by the registry). */
export type LabelsOf<N extends MetricName> = {
  readonly [K in keyof Catalog[N]["labels"]]: Catalog[N]["labels"][K] extends ReadonlyArray<infer V> ? V : string
}

export const metricNames = (): ReadonlyArray<MetricName> => Object.keys(MetricsCatalog) as Array<MetricName>

export const lookupMetric = (name: string): MetricSpec | undefined =>
  Object.hasOwn(MetricsCatalog, name) ? (MetricsCatalog as Record<string, MetricSpec>)[name] : undefined

/** Every label a series of this metric can carry, `role` included. */
const declaredLabels = (name: string): ReadonlyArray<string> => {
  const spec = lookupMetric(name)
  return spec === undefined ? [] : [ROLE_LABEL, ...Object.keys(spec.labels)]
}

const HISTOGRAM_SERIES_SUFFIXES = ["_bucket", "_sum", "_count"] as const

/**
 * The catalog metric a Prometheus series name belongs to (`x_ms_bucket` belongs to histogram `x_ms`), or
 * undefined when the series is not one of ours.
 */
export const metricOfSeries = (series: string): MetricName | undefined => {
  if (lookupMetric(series) !== undefined) return series as MetricName
  for (const suffix of HISTOGRAM_SERIES_SUFFIXES) {
    if (!series.endsWith(suffix)) continue
    const base = series.slice(0, -suffix.length)
    if (lookupMetric(base)?.type === "histogram") return base as MetricName
  }
  return undefined
}

/** `le` is the bucket bound label Prometheus adds to `_bucket` series. */
export const seriesLabels = (series: string): ReadonlyArray<string> => {
  const metric = metricOfSeries(series)
  if (metric === undefined) return []
  return series.endsWith("_bucket") && metric !== series ? [...declaredLabels(metric), "le"] : declaredLabels(metric)
}

const declaredRoutes: ReadonlySet<string> = new Set(HTTP_ROUTES)

/**
 * The route label for a request: the matched route template, or `unmatched` when no route matched. A template the
 * catalog does not declare also folds into `unmatched` rather than failing the request; the route-catalog test
 * (apps/web/test/RouteCatalog.test.ts) keeps every API route declared.
 */
export const routeLabel = (template: string | undefined): HttpRoute =>
  template !== undefined && declaredRoutes.has(template) ? (template as HttpRoute) : UNMATCHED_ROUTE

export const methodLabel = (method: string): (typeof HTTP_METHODS)[number] => {
  const upper = method.toUpperCase()
  return (HTTP_METHODS as ReadonlyArray<string>).includes(upper) ? (upper as (typeof HTTP_METHODS)[number]) : "OTHER"
}

export const statusLabel = (status: number): (typeof HTTP_STATUSES)[number] => {
  const text = String(status)
  return (HTTP_STATUSES as ReadonlyArray<string>).includes(text) ? (text as (typeof HTTP_STATUSES)[number]) : "other"
}
