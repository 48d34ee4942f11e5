import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Additive, idempotent migrations. Each runs once, in order, inside one transaction that holds an advisory
 * lock, so concurrent starters (several web/worker replicas) serialize instead of racing.
 */
export const migrations: ReadonlyArray<{ readonly id: number; readonly name: string; readonly sql: string }> = [
  {
    id: 1,
    name: "control_plane",
    sql: `
CREATE TABLE IF NOT EXISTS cloud_orgs (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cloud_api_tokens (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  name text NOT NULL,
  secret_hash text NOT NULL,
  scopes text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz
);
CREATE INDEX IF NOT EXISTS cloud_api_tokens_org ON cloud_api_tokens (org_id);
CREATE TABLE IF NOT EXISTS cloud_sessions (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  title text NOT NULL,
  profile_name text NOT NULL DEFAULT 'default',
  project_source jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  aborted_at timestamptz
);
CREATE INDEX IF NOT EXISTS cloud_sessions_org_created ON cloud_sessions (org_id, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS cloud_session_projections (
  session_id text PRIMARY KEY REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  org_id text NOT NULL,
  status text NOT NULL DEFAULT 'idle',
  last_sequence bigint NOT NULL DEFAULT 0,
  earliest_sequence bigint NOT NULL DEFAULT 1,
  projected_sequence bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cloud_session_projection_messages (
  session_id text NOT NULL REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  message_id text NOT NULL,
  role text NOT NULL,
  text text NOT NULL,
  command_id text,
  attempt int,
  sequence bigint NOT NULL,
  PRIMARY KEY (session_id, message_id)
);
CREATE INDEX IF NOT EXISTS cloud_session_projection_messages_seq ON cloud_session_projection_messages (session_id, sequence);
CREATE TABLE IF NOT EXISTS cloud_session_commands (
  id text PRIMARY KEY,
  session_id text NOT NULL REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  org_id text NOT NULL,
  position bigserial NOT NULL,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  idempotency_key text,
  status text NOT NULL DEFAULT 'pending',
  attempt_count int NOT NULL DEFAULT 0,
  claimed_epoch bigint,
  claimed_by text,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz,
  UNIQUE (session_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS cloud_session_commands_pending ON cloud_session_commands (position) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS cloud_session_commands_session ON cloud_session_commands (session_id, position);
CREATE TABLE IF NOT EXISTS cloud_session_events (
  session_id text NOT NULL REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  sequence bigint NOT NULL,
  event_id text NOT NULL,
  type text NOT NULL,
  payload jsonb NOT NULL,
  command_id text,
  attempt int,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, sequence)
);
CREATE TABLE IF NOT EXISTS cloud_worker_leases (
  session_id text PRIMARY KEY REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  worker_id text,
  epoch bigint NOT NULL DEFAULT 0,
  expires_at timestamptz NOT NULL DEFAULT '-infinity',
  claimed_at timestamptz,
  renewed_at timestamptz,
  checkpoint_version bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cloud_worker_leases_owned ON cloud_worker_leases (expires_at) WHERE worker_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS cloud_worker_heartbeats (
  worker_id text PRIMARY KEY,
  role text NOT NULL DEFAULT 'worker',
  pool_id text,
  status text NOT NULL,
  version text NOT NULL,
  region text,
  capabilities text[] NOT NULL DEFAULT '{}',
  current_load int NOT NULL DEFAULT 0,
  active_work_ids text[] NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cloud_audit_events (
  id bigserial PRIMARY KEY,
  org_id text,
  actor text NOT NULL,
  action text NOT NULL,
  target text,
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cloud_audit_events_org ON cloud_audit_events (org_id, id DESC);
`
  },
  {
    id: 5,
    name: "observability",
    sql: `
ALTER TABLE cloud_session_commands ADD COLUMN IF NOT EXISTS trace_parent text;
CREATE INDEX IF NOT EXISTS cloud_session_projections_lagging ON cloud_session_projections ((last_sequence - projected_sequence))
  WHERE projected_sequence < last_sequence;
`
  },
  {
    id: 6,
    name: "worker_service_plane",
    sql: `
CREATE TABLE IF NOT EXISTS cloud_worker_pools (
  id text PRIMARY KEY,
  name text NOT NULL,
  mode text NOT NULL CHECK (mode IN ('self_hosted', 'saas_operated')),
  max_workers int NOT NULL CHECK (max_workers >= 0),
  max_concurrent_work int NOT NULL CHECK (max_concurrent_work >= 0),
  region text,
  capabilities text[] NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'paused')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cloud_workers (
  id text PRIMARY KEY,
  pool_id text NOT NULL REFERENCES cloud_worker_pools(id),
  name text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'active', 'draining', 'paused', 'retired', 'revoked')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cloud_workers_pool ON cloud_workers (pool_id, status);
CREATE TABLE IF NOT EXISTS cloud_worker_credentials (
  id text PRIMARY KEY,
  worker_id text NOT NULL REFERENCES cloud_workers(id),
  secret_hash text NOT NULL,
  scopes text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  last_used_at timestamptz,
  replaces_id text,
  replaced_by_id text
);
CREATE INDEX IF NOT EXISTS cloud_worker_credentials_worker ON cloud_worker_credentials (worker_id);
CREATE INDEX IF NOT EXISTS cloud_worker_leases_worker ON cloud_worker_leases (worker_id) WHERE worker_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS cloud_artifacts (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  session_id text NOT NULL REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  name text NOT NULL,
  content_type text NOT NULL,
  size_bytes bigint NOT NULL,
  sha256 text NOT NULL,
  object_key text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cloud_artifacts_org ON cloud_artifacts (org_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS cloud_artifacts_session ON cloud_artifacts (session_id, created_at DESC, id DESC);
`
  },
  {
    id: 7,
    name: "open_commands_index",
    // Claims look for sessions with open (pending or running) commands: without this index every claim scanned the
    // whole, ever-growing command history.
    sql: `
CREATE INDEX IF NOT EXISTS cloud_session_commands_open ON cloud_session_commands (session_id)
  WHERE status IN ('pending', 'running');
`
  },
  {
    id: 8,
    name: "deployment_markers",
    // What every process of a deployment must share (the object store, the secret key), recorded by the first one
    // to probe it: a split process that cannot match a marker is not ready.
    sql: `
CREATE TABLE IF NOT EXISTS cloud_deployment_markers (
  name text PRIMARY KEY,
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
`
  },
  {
    id: 10,
    name: "tenancy",
    // Platform operator tokens belong to no org (`kind = 'platform'`, `org_id` NULL). Pools carry the org they
    // serve: a self-hosted pool's workers claim only that org's sessions; saas_operated pools serve every org.
    // Self-hosted pools made before this migration are given the bootstrap (oldest) org.
    sql: `
ALTER TABLE cloud_api_tokens ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'org' CHECK (kind IN ('org', 'platform'));
ALTER TABLE cloud_api_tokens ALTER COLUMN org_id DROP NOT NULL;
DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'cloud_api_tokens_kind_org') THEN ALTER TABLE cloud_api_tokens ADD CONSTRAINT cloud_api_tokens_kind_org CHECK ((kind = 'platform') = (org_id IS NULL)); END IF; END $$;
ALTER TABLE cloud_worker_pools ADD COLUMN IF NOT EXISTS org_id text REFERENCES cloud_orgs(id);
CREATE INDEX IF NOT EXISTS cloud_worker_pools_org ON cloud_worker_pools (org_id);
UPDATE cloud_worker_pools SET org_id = (SELECT id FROM cloud_orgs ORDER BY created_at, id LIMIT 1)
  WHERE mode = 'self_hosted' AND org_id IS NULL;
`
  },
  {
    id: 11,
    name: "prompt_window_admission",
    // The prompt enqueue's bump of the org's hourly window row, as a statement of its own inside the enqueue statement:
    // every enqueue of an org waits for that row (held to the commit), and the waiter then rechecks the updated row
    // (EvalPlanQual), which sets up every subplan of the statement the row lock is in — here one UPDATE, not the
    // whole enqueue. A VOLATILE function's statement takes its own snapshot: it sees the row as last committed.
    // The body names a table of a later migration: it is checked at the first call, not here.
    sql: `
SET LOCAL check_function_bodies = off;
CREATE OR REPLACE FUNCTION cloud_admit_prompt_window(
  org text, per_hour bigint, queued_limit bigint, queued_seen bigint, used_seen bigint,
  concurrent_limit bigint, active_seen bigint, mine boolean
) RETURNS bigint LANGUAGE sql VOLATILE AS $$
  UPDATE cloud_quota_windows w SET used = w.used + 1
  WHERE w.org_id = org AND w.quota = 'prompts_per_hour' AND w.window_start = date_trunc('hour', now())
    AND w.used < per_hour
    AND queued_seen + w.used - used_seen < queued_limit
    AND (concurrent_limit IS NULL OR mine OR active_seen + w.used - used_seen < concurrent_limit)
  RETURNING w.used
$$;
SET LOCAL check_function_bodies = on;
`
  },
  {
    id: 12,
    name: "session_title_trigram_index",
    // The session/thread title search (`?q=`, ILIKE '%…%') through a trigram index instead of reading every session of
    // the org. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (13+): a database owner may create
    // it. Where it cannot be created the migration still applies (a NOTICE) and the search scans, as before. The
    // operator class is named in the extension's own schema, wherever it was installed.
    sql: `
DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm; EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'pg_trgm not available (%): session title search scans', SQLERRM; END $$;
DO $$ DECLARE trgm_schema text; BEGIN SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'; IF trgm_schema IS NOT NULL THEN EXECUTE format('CREATE INDEX IF NOT EXISTS cloud_sessions_title_trgm ON cloud_sessions USING gin (title %I.gin_trgm_ops)', trgm_schema); END IF; END $$;
`
  },
  {
    id: 13,
    name: "session_tagged_index",
    // The thread views' tag list (\`GET /api/threads/tags\`) counts the tags of the org's tagged sessions only: an
    // org of 100,000 sessions, few of them tagged, reads those few instead of every session on each call. On a new
    // database this runs before migration 17, so it adds the column as 17 does (17's ADD COLUMN IF NOT EXISTS is then
    // a no-op).
    sql: `
ALTER TABLE cloud_sessions ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS cloud_sessions_org_tagged ON cloud_sessions (org_id) WHERE tags <> '{}';
`
  },
  {
    id: 14,
    name: "smart_filter_indexes",
    // The thread views' smart-filter counts of a large org: \`mine\` through the org's sessions by creator, \`failed\`
    // from the failed or dead prompts (few) to their sessions, not one probe per session of the org. On a new database
    // this runs before migration 17, so it adds created_by as 17 does (17's ADD COLUMN IF NOT EXISTS is then a no-op).
    sql: `
ALTER TABLE cloud_sessions ADD COLUMN IF NOT EXISTS created_by text;
CREATE INDEX IF NOT EXISTS cloud_sessions_org_creator ON cloud_sessions (org_id, created_by);
CREATE INDEX IF NOT EXISTS cloud_session_commands_failed_prompts ON cloud_session_commands (session_id)
  WHERE kind = 'prompt' AND status IN ('failed', 'dead');
`
  },
  {
    id: 15,
    name: "byok_keys",
    // An org's provider keys, sealed with its data key; key_id is the master key (kid) the envelope names, so a
    // KEK rotation finds what to rewrap. Only the envelope, last four characters and a fingerprint are stored.
    sql: `
CREATE TABLE IF NOT EXISTS cloud_byok_keys (
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  provider text NOT NULL,
  envelope bytea NOT NULL,
  key_id text NOT NULL,
  last4 text NOT NULL,
  fingerprint text NOT NULL,
  base_url text,
  health text NOT NULL DEFAULT 'unknown',
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, provider)
);
CREATE INDEX IF NOT EXISTS cloud_byok_keys_key_id ON cloud_byok_keys (key_id);
`
  },
  {
    id: 16,
    name: "session_pending_asks",
    // The projection's pending asks (permission requests and questions a running turn waits on), maintained by the
    // same statement that appends the events; an answer is accepted (409 otherwise) only while its ask is here.
    sql: `
CREATE TABLE IF NOT EXISTS cloud_session_pending_asks (
  session_id text NOT NULL REFERENCES cloud_sessions(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('permission', 'question')),
  ask_id text NOT NULL,
  command_id text,
  payload jsonb NOT NULL,
  sequence bigint NOT NULL,
  PRIMARY KEY (session_id, kind, ask_id)
);
`
  },
  {
    id: 17,
    name: "session_tags",
    // The thread views: a session's tags (distinct, lower-case; GIN for the tag filter) and who created it (the
    // \`mine\` smart filter). Sessions from before carry no tags and no creator.
    sql: `
ALTER TABLE cloud_sessions ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE cloud_sessions ADD COLUMN IF NOT EXISTS created_by text;
CREATE INDEX IF NOT EXISTS cloud_sessions_tags ON cloud_sessions USING gin (tags);
`
  },
  {
    id: 20,
    name: "workflows",
    // A scheduled run is unique on (workflow_id, scheduled_for): the slot fires once however many schedulers race.
    // Manual and webhook runs have no slot (NULLs never conflict); a webhook delivery's signature digest is its own
    // primary key, recorded in the run's transaction (durable replay protection).
    sql: `
CREATE TABLE IF NOT EXISTS cloud_workflows (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  title text NOT NULL,
  instructions text NOT NULL,
  agent_name text NOT NULL,
  skill_names text[] NOT NULL DEFAULT '{}',
  tool_ids text[] NOT NULL DEFAULT '{}',
  steps jsonb NOT NULL DEFAULT '[]',
  triggers jsonb NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'archived')),
  overlap_policy text NOT NULL DEFAULT 'skip' CHECK (overlap_policy IN ('skip', 'buffer_one', 'allow')),
  catch_up_window_ms bigint NOT NULL DEFAULT 3600000,
  catch_up_mode text NOT NULL DEFAULT 'each' CHECK (catch_up_mode IN ('each', 'latest')),
  schedule_cursor timestamptz NOT NULL DEFAULT now(),
  next_run_at timestamptz,
  claimed_by text,
  claim_epoch bigint NOT NULL DEFAULT 0,
  claim_expires_at timestamptz,
  last_run_at timestamptz,
  latest_run_id text,
  latest_run_status text,
  latest_run_session_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cloud_workflows_org ON cloud_workflows (org_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS cloud_workflows_due ON cloud_workflows (next_run_at)
  WHERE status = 'active' AND claimed_by IS NULL AND next_run_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS cloud_workflows_claimed ON cloud_workflows (claim_expires_at) WHERE claimed_by IS NOT NULL;
CREATE TABLE IF NOT EXISTS cloud_workflow_trigger_secrets (
  workflow_id text NOT NULL REFERENCES cloud_workflows(id) ON DELETE CASCADE,
  trigger_id text NOT NULL,
  sealed text NOT NULL,
  rotated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, trigger_id)
);
CREATE TABLE IF NOT EXISTS cloud_workflow_runs (
  id text PRIMARY KEY,
  workflow_id text NOT NULL REFERENCES cloud_workflows(id) ON DELETE CASCADE,
  org_id text NOT NULL,
  session_id text,
  command_id text,
  trigger_type text NOT NULL CHECK (trigger_type IN ('manual', 'schedule', 'webhook')),
  trigger_id text,
  trigger_payload jsonb,
  scheduled_for timestamptz,
  status text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  summary text,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  UNIQUE (workflow_id, scheduled_for)
);
CREATE INDEX IF NOT EXISTS cloud_workflow_runs_workflow ON cloud_workflow_runs (workflow_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS cloud_workflow_runs_open ON cloud_workflow_runs (created_at) WHERE status IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS cloud_webhook_deliveries (
  delivery_key text PRIMARY KEY,
  workflow_id text NOT NULL REFERENCES cloud_workflows(id) ON DELETE CASCADE,
  run_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cloud_webhook_deliveries_received ON cloud_webhook_deliveries (received_at);
`
  },
  {
    id: 23,
    name: "mailbox_indexes_keyed",
    // Issue 15 target 3. The per-session statements (start/next: the session's oldest pending command; close and
    // releaseIfIdle: is anything pending?) must reach the session's mailbox by its key (migration 40's
    // (session_id, position) index). But every partial index on `status = 'pending'` is usable by them, and under
    // statistics taken while the mailbox was empty (a large history: autovacuum rarely analyzes it) the planner
    // prefers the physically smallest one — the org's (one deduplicated key) or the global one — and walks every
    // pending command of the org with a filter on the session: O(backlog) per call. These two indexes now carry a
    // predicate only the statements they serve imply (an `org_id = …` condition implies `org_id IS NOT NULL`; the
    // backlog reads state `position > 0`, true of every row), so a per-session statement cannot use them.
    // On a database created after this migration, migration 32 finds org_pending already there (IF NOT EXISTS).
    sql: `
DROP INDEX IF EXISTS cloud_session_commands_pending;
CREATE INDEX IF NOT EXISTS cloud_session_commands_pending ON cloud_session_commands (position)
  WHERE status = 'pending' AND position > 0;
DROP INDEX IF EXISTS cloud_session_commands_org_pending;
CREATE INDEX IF NOT EXISTS cloud_session_commands_org_pending ON cloud_session_commands (org_id)
  WHERE status = 'pending' AND org_id IS NOT NULL;
`
  },
  {
    id: 24,
    name: "idempotency_keys_partial",
    // Issue 15 target 3. The (session_id, idempotency_key) uniqueness was a table constraint: an index entry for every
    // command, almost all with a NULL key (a prompt without a key, every command of the worker's path), maintained
    // on the insert and again on each status change (a status change is never a HOT update: the mailbox's partial
    // indexes name the status) — three insertions per command into an index the size of the history. The same
    // uniqueness on the keyed commands only (NULL keys never conflicted): ON CONFLICT names the predicate.
    sql: `
CREATE UNIQUE INDEX IF NOT EXISTS cloud_session_commands_idempotency ON cloud_session_commands (session_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
ALTER TABLE cloud_session_commands DROP CONSTRAINT IF EXISTS cloud_session_commands_session_id_idempotency_key_key;
`
  },
  {
    id: 25,
    name: "channels",
    sql: `
CREATE TABLE IF NOT EXISTS cloud_channel_bindings (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  provider_kind text NOT NULL CHECK (provider_kind IN ('telegram', 'slack', 'email', 'webhook')),
  provider_id text NOT NULL,
  display_name text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'auth_required', 'error')),
  status_detail text,
  settings jsonb NOT NULL DEFAULT '{}'::jsonb,
  credential_ref text,
  external_target text NOT NULL,
  inbound_policy text NOT NULL DEFAULT 'open' CHECK (inbound_policy IN ('open', 'linked_only')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, provider_id, external_target)
);
CREATE INDEX IF NOT EXISTS cloud_channel_bindings_org ON cloud_channel_bindings (org_id, created_at, id);
CREATE TABLE IF NOT EXISTS cloud_channel_routes (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  channel_binding_id text NOT NULL REFERENCES cloud_channel_bindings(id) ON DELETE CASCADE,
  external_thread_id text NOT NULL,
  session_id text NOT NULL REFERENCES cloud_sessions(id),
  origin text NOT NULL CHECK (origin IN ('first_message', 'explicit')),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (channel_binding_id, external_thread_id)
);
CREATE INDEX IF NOT EXISTS cloud_channel_routes_session ON cloud_channel_routes (session_id);
CREATE TABLE IF NOT EXISTS cloud_channel_identities (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  provider_kind text NOT NULL,
  provider_id text NOT NULL,
  external_user_id text NOT NULL,
  account_id text NOT NULL,
  display_name text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, provider_kind, provider_id, external_user_id)
);
CREATE TABLE IF NOT EXISTS cloud_channel_deliveries (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  channel_binding_id text NOT NULL REFERENCES cloud_channel_bindings(id) ON DELETE CASCADE,
  route_id text NOT NULL,
  external_thread_id text,
  session_id text NOT NULL,
  event_id text NOT NULL,
  event_sequence bigint NOT NULL,
  event_type text NOT NULL,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'sent', 'failed', 'dead')),
  attempts int NOT NULL DEFAULT 0,
  max_attempts int NOT NULL DEFAULT 8,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claim_expires_at timestamptz,
  claim_token text,
  last_claimed_by text,
  last_claimed_replica text,
  last_error text,
  idempotency_key text NOT NULL UNIQUE,
  provider_message_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS cloud_channel_deliveries_due ON cloud_channel_deliveries (channel_binding_id, next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX IF NOT EXISTS cloud_channel_deliveries_claimed ON cloud_channel_deliveries (claim_expires_at) WHERE status = 'claimed';
CREATE INDEX IF NOT EXISTS cloud_channel_deliveries_org ON cloud_channel_deliveries (org_id, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS cloud_channel_provider_events (
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  channel_binding_id text NOT NULL REFERENCES cloud_channel_bindings(id) ON DELETE CASCADE,
  provider_event_id text NOT NULL,
  kind text NOT NULL,
  status text NOT NULL CHECK (status IN ('claimed', 'completed')),
  claim_token text,
  claim_expires_at timestamptz,
  claimed_by text,
  outcome text,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  PRIMARY KEY (channel_binding_id, provider_event_id)
);
CREATE TABLE IF NOT EXISTS cloud_channel_cursors (
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  channel_binding_id text NOT NULL REFERENCES cloud_channel_bindings(id) ON DELETE CASCADE,
  name text NOT NULL,
  value text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text,
  PRIMARY KEY (channel_binding_id, name)
);
CREATE TABLE IF NOT EXISTS cloud_channel_gateway_tokens (
  token_id text NOT NULL REFERENCES cloud_api_tokens(id),
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  channel_binding_id text NOT NULL REFERENCES cloud_channel_bindings(id) ON DELETE CASCADE,
  PRIMARY KEY (token_id, channel_binding_id)
);
`
  },
  {
    id: 26,
    name: "channel_provider_event_retention",
    // The provider-event prune reads completed rows by completion time and abandoned claims by expiry.
    sql: `
CREATE INDEX IF NOT EXISTS cloud_channel_provider_events_completed ON cloud_channel_provider_events (completed_at) WHERE status = 'completed';
CREATE INDEX IF NOT EXISTS cloud_channel_provider_events_abandoned ON cloud_channel_provider_events (claim_expires_at) WHERE status = 'claimed';
`
  },
  {
    id: 27,
    name: "projection_updates_hot",
    // Issue 15 target 3. Every append (enqueue's prompt.submitted, start, each fenced append, close) updates its
    // session's projection row, moving last_sequence and projected_sequence together. The B-tree on their difference
    // (migration 5) made every such update non-HOT: a new entry in the primary key and a new tuple wherever the heap
    // had room — one more page dirtied (and written in full to the WAL after each checkpoint) per statement, spread
    // over the sessions touched. A BRIN index is summarizing: since Postgres 16 an update changing only its columns
    // stays HOT. It still answers the lag query (`maxLag`: ranges whose summary is 0..0 are skipped). Free space on
    // each page keeps the new version beside the old one (fillfactor applies to pages written from now on).
    sql: `
DROP INDEX IF EXISTS cloud_session_projections_lagging;
CREATE INDEX IF NOT EXISTS cloud_session_projections_lag ON cloud_session_projections
  USING brin ((last_sequence - projected_sequence));
ALTER TABLE cloud_session_projections SET (fillfactor = 80);
`
  },
  {
    id: 30,
    name: "identity",
    // People: accounts from an OIDC subject, org memberships with roles, revocable browser sessions (only the
    // sha256 of the cookie value is stored), one-time OIDC login transactions.
    sql: `
CREATE TABLE IF NOT EXISTS cloud_accounts (
  id text PRIMARY KEY,
  issuer text NOT NULL,
  subject text NOT NULL,
  email text,
  name text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (issuer, subject)
);
CREATE TABLE IF NOT EXISTS cloud_memberships (
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  account_id text NOT NULL REFERENCES cloud_accounts(id),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, account_id)
);
CREATE TABLE IF NOT EXISTS cloud_browser_sessions (
  id text PRIMARY KEY,
  secret_hash text NOT NULL UNIQUE,
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  account_id text NOT NULL REFERENCES cloud_accounts(id),
  csrf_token text NOT NULL,
  idle_ms bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  idle_expires_at timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS cloud_browser_sessions_account ON cloud_browser_sessions (org_id, account_id) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS cloud_oidc_logins (
  id_hash text PRIMARY KEY,
  state text NOT NULL,
  nonce text NOT NULL,
  code_verifier text NOT NULL,
  return_to text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS cloud_oidc_logins_expires ON cloud_oidc_logins (expires_at);
`
  },
  {
    id: 31,
    name: "audit_request_ids",
    // The audit log (created with the worker plane) learns the request that caused each row; it stays
    // append-only and outlives an org's offboarding.
    sql: `
ALTER TABLE cloud_audit_events ADD COLUMN IF NOT EXISTS request_id text;
CREATE INDEX IF NOT EXISTS cloud_audit_events_org_action ON cloud_audit_events (org_id, action, id DESC);
`
  },
  {
    id: 32,
    name: "quotas",
    // Quota admission: per-org counters in fixed windows (bumped in the admitting transaction) and per-org overrides
    // of the configured defaults; pending commands are counted per org through a partial index.
    sql: `
CREATE TABLE IF NOT EXISTS cloud_quota_windows (
  org_id text NOT NULL,
  quota text NOT NULL,
  window_start timestamptz NOT NULL,
  used bigint NOT NULL,
  PRIMARY KEY (org_id, quota, window_start)
);
CREATE TABLE IF NOT EXISTS cloud_org_quotas (
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  quota text NOT NULL,
  value bigint NOT NULL CHECK (value >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, quota)
);
CREATE INDEX IF NOT EXISTS cloud_session_commands_org_pending ON cloud_session_commands (org_id) WHERE status = 'pending';
`
  },
  {
    id: 33,
    name: "org_offboarding",
    sql: `
ALTER TABLE cloud_orgs ADD COLUMN IF NOT EXISTS offboarded_at timestamptz;
`
  },
  {
    id: 34,
    name: "invitations",
    sql: `
CREATE TABLE IF NOT EXISTS cloud_invitations (
  org_id text NOT NULL REFERENCES cloud_orgs(id),
  email text NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, email)
);
`
  },
  {
    id: 35,
    name: "token_login_sessions",
    // A browser session signed in with an API token (token login) ends when that token is revoked or expires.
    sql: `
ALTER TABLE cloud_browser_sessions ADD COLUMN IF NOT EXISTS source_token_id text;
CREATE INDEX IF NOT EXISTS cloud_browser_sessions_source_token ON cloud_browser_sessions (source_token_id)
  WHERE source_token_id IS NOT NULL;
`
  },
  {
    id: 36,
    name: "channel_binding_inbound_credential",
    // A binding's own inbound signing secret, by reference (like credential_ref): requests for it come to the
    // gateway's /webhooks/:providerId/:bindingId signed with that secret instead of the provider-wide one.
    sql: `
ALTER TABLE cloud_channel_bindings ADD COLUMN IF NOT EXISTS inbound_credential_ref text;
`
  },
  {
    id: 40,
    name: "session_pending_index",
    // The owner's hot reads of its own mailbox (start/next: the session's oldest pending command; close/release: is
    // anything pending?) walk only that session's pending commands, not the session's whole history (the
    // (session_id, position) index) nor every session's backlog (the global pending index): flat as history grows.
    sql: `
CREATE INDEX IF NOT EXISTS cloud_session_commands_session_pending ON cloud_session_commands (session_id, position)
  WHERE status = 'pending';
`
  },
  {
    id: 41,
    name: "heartbeat_interval",
    // Each heartbeat row says how long until its writer beats again (an idle worker beats less often), so readers
    // judge its freshness against that, not against their own configured interval. NULL: an older writer.
    sql: `
ALTER TABLE cloud_worker_heartbeats ADD COLUMN IF NOT EXISTS interval_ms integer;
`
  },
  {
    id: 46,
    name: "org_open_prompts_index",
    // The concurrent_sessions quota counts the org's sessions with an open prompt up to the limit: a distinct scan of
    // this index in session order stops at the limit instead of reading the org's whole open backlog.
    sql: `
CREATE INDEX IF NOT EXISTS cloud_session_commands_org_open_prompts ON cloud_session_commands (org_id, session_id)
  WHERE kind = 'prompt' AND status IN ('pending', 'running');
`
  }
]

/** Arbitrary constant shared by every role: the advisory lock key serializing migrations. */
const MIGRATION_LOCK_KEY = 7_316_540_211

export const runMigrations = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`)
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS cloud_schema_migrations (
      id int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const rows = yield* sql.unsafe<{ id: number }>(`SELECT id FROM cloud_schema_migrations`)
    const done = new Set(rows.map((row) => Number(row.id)))
    const applied: Array<string> = []
    for (const migration of migrations) {
      if (done.has(migration.id)) continue
      for (const statement of migration.sql.split(/;\s*\n/).map((part) => part.trim()).filter((part) => part !== "")) {
        yield* sql.unsafe(statement)
      }
      yield* sql.unsafe(`INSERT INTO cloud_schema_migrations (id, name) VALUES ($1, $2)`, [migration.id, migration.name])
      applied.push(`${migration.id}_${migration.name}`)
    }
    return applied
  }))
}).pipe(Effect.withSpan("Migrations.run"))

/** Every migration id the database records as applied, ascending (a backup's manifest lists them all). */
export const appliedMigrationIds = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ id: number }>(`SELECT id FROM cloud_schema_migrations ORDER BY id`)
  return rows.map((row) => Number(row.id))
})

/**
 * The ids of the migrations this build knows that are not in `applied`, in order (every id is compared, not just the
 * highest: a database missing a migration between applied ones is not up to date).
 */
export const pendingOf = (applied: Iterable<number>): ReadonlyArray<number> => {
  const set = new Set(applied)
  return migrations.map((migration) => migration.id).filter((id) => !set.has(id))
}

/** `pendingOf` the database's applied migrations (the `/readyz` `control_plane` check). */
export const pendingMigrations = Effect.map(appliedMigrationIds, pendingOf)

/** True when every migration this build knows is applied (the `/readyz` `control_plane` check). */
export const migrationsApplied = Effect.map(pendingMigrations, (pending) => pending.length === 0)
