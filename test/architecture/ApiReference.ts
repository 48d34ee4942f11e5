/**
 * The route table of docs/api-additions.md, rendered from the one `Api` definition (its OpenAPI document and its
 * authorization table), and what that doc must say about the routes and event types the shared HTTP contract
 * (shared/API.md, outside this repo) does not list. `npm run docs:api` writes the table; ApiReference.test.ts fails
 * when the doc is behind the code.
 */
import { Api, authorizationTable, SessionEventType } from "@cowork/domain"
import { OpenApi } from "effect/http-api"

export const DOC_PATH = "docs/api-additions.md"
export const TABLE_START = "<!-- generated: npm run docs:api -->"
export const TABLE_END = "<!-- end generated -->"

/**
 * The routes shared/API.md lists (as of 2026-12-01), `METHOD /path` with `:param`s as the Api names them. Its
 * `/api/channels/...` line ("bindings, identities, session binding, prompt, delivery stream/ack, provider-event
 * claims, cursors") counts for the routes it names; every other route is an addition and docs/api-additions.md
 * describes it.
 */
export const SHARED_CONTRACT_ROUTES: ReadonlySet<string> = new Set([
  "GET /healthz", "GET /livez", "GET /readyz",
  "GET /api/runtime/status", "GET /api/workers/heartbeats", "GET /api/diagnostics", "GET /api/metrics", "GET /metrics",
  "GET /api/sessions/:id/projection-status", "POST /api/sessions/:id/projection-repair",
  "GET /api/admin/worker-pools", "POST /api/admin/worker-pools", "PATCH /api/admin/worker-pools/:id",
  "GET /api/admin/workers", "POST /api/admin/workers",
  ...["activate", "pause", "drain", "resume", "retire", "revoke"].map((action) => `POST /api/admin/workers/:id/${action}`),
  "POST /api/admin/workers/:id/credentials", "POST /api/admin/workers/:id/credentials/:cid/rotate",
  "POST /api/admin/workers/:id/credentials/:cid/revoke",
  "POST /api/sessions/:id/abort", "POST /api/sessions/:id/retry", "POST /api/admin/commands/:id/dead-letter",
  "GET /api/admin/policy", "GET /api/admin/audit",
  "GET /api/config", "GET /api/workspace",
  "GET /api/sessions", "POST /api/sessions", "GET /api/sessions/:id", "GET /api/sessions/:id/view",
  "POST /api/sessions/:id/prompt", "POST /api/sessions/:id/permission-respond", "POST /api/sessions/:id/question-reply",
  "POST /api/sessions/:id/question-reject", "GET /api/sessions/:id/events", "GET /api/events",
  "GET /api/threads", "GET /api/threads/tags", "GET /api/threads/smart-filters",
  "GET /api/sessions/:id/artifacts", "POST /api/sessions/:id/artifacts", "GET /api/sessions/:id/artifacts/:aid", "GET /api/artifacts",
  "GET /api/workflows", "POST /api/workflows", "GET /api/workflows/:id",
  ...["run", "pause", "resume", "archive"].map((action) => `POST /api/workflows/:id/${action}`),
  "POST /webhooks/workflows/:id",
  "GET /api/byok", "POST /api/byok/:provider", "DELETE /api/byok/:provider", "POST /api/byok/:provider/validate",
  "GET /api/usage/summary", "GET /api/usage/events",
  "GET /api/api-tokens", "POST /api/api-tokens", "DELETE /api/api-tokens/:id",
  "GET /auth/login", "GET /auth/callback", "POST /auth/logout",
  "GET /api/channels/deliveries", "POST /api/channels/deliveries/:id/retry", "POST /api/channels/deliveries/:id/dead-letter",
  "GET /api/channels/bindings", "POST /api/channels/bindings", "GET /api/channels/bindings/:id",
  "PATCH /api/channels/bindings/:id", "DELETE /api/channels/bindings/:id",
  "GET /api/channels/bindings/:id/sessions", "POST /api/channels/bindings/:id/sessions",
  "DELETE /api/channels/bindings/:id/sessions/:rid", "POST /api/channels/bindings/:id/prompt",
  "GET /api/channels/identities", "POST /api/channels/identities", "DELETE /api/channels/identities/:id",
  "POST /api/channels/identities/resolve",
  "GET /api/channels/deliveries/stream", "POST /api/channels/deliveries/claim", "POST /api/channels/deliveries/:id/ack",
  "POST /api/channels/provider-events/claim", "POST /api/channels/provider-events/complete",
  "GET /api/channels/cursors", "PUT /api/channels/cursors"
])

/** The SSE event types shared/API.md lists. */
export const SHARED_CONTRACT_EVENT_TYPES: ReadonlySet<string> = new Set([
  "session.created", "prompt.submitted", "session.status", "assistant.message", "tool.call", "permission.requested",
  "question.asked", "artifact.created", "runtime.error", "command.retried", "session.idle", "session.aborted",
  "snapshot.required"
])

/** Every session event type the log stores. */
export const sessionEventTypes = (): ReadonlyArray<string> => SessionEventType.literals

export interface RouteRow {
  readonly route: string
  readonly auth: string
  readonly request: string
  readonly success: string
  readonly errors: string
  readonly contract: boolean
}

type Json = { readonly [key: string]: unknown }
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** Top-level property names of a JSON schema (`name?` when optional), through `$ref`s and unions. */
const fieldsOf = (schema: unknown, components: Json): ReadonlyArray<string> => {
  if (!isObject(schema)) return []
  if (typeof schema.$ref === "string") return fieldsOf(components[schema.$ref.replace("#/components/schemas/", "")], components)
  const alternatives = schema.anyOf ?? schema.oneOf
  if (Array.isArray(alternatives)) return [...new Set(alternatives.flatMap((alt) => fieldsOf(alt, components)))]
  if (!isObject(schema.properties)) return []
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  return Object.keys(schema.properties).map((name) => required.has(name) ? name : `${name}?`)
}

const bodyText = (content: unknown, components: Json): string => {
  if (!isObject(content)) return ""
  return Object.entries(content).map(([type, media]) => {
    if (type !== "application/json") return type
    const fields = fieldsOf(isObject(media) ? media.schema : undefined, components)
    return fields.length === 0 ? "json" : `{${fields.join(", ")}}`
  }).join(" \\| ")
}

const template = (openApiPath: string) => openApiPath.replace(/\{([^}]+)\}/g, ":$1")

/** One row per route of the `Api`, in its definition order. */
export const routeRows = (): ReadonlyArray<RouteRow> => {
  const spec = OpenApi.fromApi(Api) as unknown as { paths: Record<string, Record<string, Json>>; components: { schemas: Json } }
  const operations = new Map<string, Json>()
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) operations.set(`${method.toUpperCase()} ${template(path)}`, operation)
  }
  return authorizationTable().map((row) => {
    const route = `${row.method} ${row.path}`
    const operation = operations.get(route)
    if (operation === undefined) throw new Error(`${route} is not in the OpenAPI document`)
    const query = (Array.isArray(operation.parameters) ? operation.parameters : [])
      .filter((p): p is Json => isObject(p) && p.in === "query")
      .map((p) => `${String(p.name)}${p.required === true ? "" : "?"}`)
    const body = isObject(operation.requestBody) ? bodyText(operation.requestBody.content, spec.components.schemas) : ""
    const responses = isObject(operation.responses) ? operation.responses : {}
    const statuses = Object.keys(responses)
    const success = statuses.filter((s) => s.startsWith("2")).map((status) => {
      const response = responses[status]
      const content = isObject(response) ? bodyText(response.content, spec.components.schemas) : ""
      return content === "" ? status : `${status} ${content}`
    })
    return {
      route,
      auth: row.audience === "none" ? "none" : `${row.audience}: ${row.scopes.join(", ")}`,
      request: [query.length === 0 ? "" : `?${query.join("&")}`, body].filter((part) => part !== "").join(" "),
      success: success.join("; "),
      errors: statuses.filter((s) => !s.startsWith("2")).join(" "),
      contract: SHARED_CONTRACT_ROUTES.has(route)
    }
  })
}

const cell = (text: string) => text === "" ? "" : `\`${text.replace(/\|/g, "\\|").replace(/\\\\\|/g, "\\|")}\``

/** The generated block of docs/api-additions.md, markers included. */
export const renderRouteTable = (rows: ReadonlyArray<RouteRow> = routeRows()): string =>
  [
    TABLE_START,
    "| route | in API.md | auth (audience: scopes) | request (query, body) | success | errors |",
    "|---|---|---|---|---|---|",
    ...rows.map((row) =>
      `| \`${row.route}\` | ${row.contract ? "yes" : "**added**"} | ${row.auth} | ${cell(row.request)} | ${cell(row.success)} | ${row.errors} |`
    ),
    TABLE_END
  ].join("\n")

/** The doc with its generated block replaced by `table`. */
export const withTable = (doc: string, table: string): string => {
  const start = doc.indexOf(TABLE_START)
  const end = doc.indexOf(TABLE_END)
  if (start < 0 || end < start) throw new Error(`${DOC_PATH} has no ${TABLE_START} … ${TABLE_END} block`)
  return doc.slice(0, start) + table + doc.slice(end + TABLE_END.length)
}

/** The doc without its generated block: the prose that must describe every addition. */
export const prose = (doc: string): string => withTable(doc, "")
