import { authorizationTable, type AuthorizationRow, type TokenScope } from "@cowork/domain"
import { Identity, Tokens } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { baseUrl, layer, platformToken } from "./support/WebTestServer.ts"

/**
 * Issue 8 item 1: the authorization matrix, derived from the API definition. Every authenticated route of `Api`
 * (new routes join by being defined) is called by every kind of principal: no token, an org token of each single
 * scope, and a platform operator; on the caller's own org's objects and on another org's. Expected:
 * - no token → 401; a token without any of the route's scopes → 403; a platform operator on a tenant route → 403;
 * - an allowed org principal on another org's object → 404 (never a 200);
 * - an allowed principal on its own object (a platform operator: any org's, on operator routes) → neither 401, 403,
 *   404 nor a 5xx.
 * A route whose path parameters have no fixture below is still checked for 401 / 403 and is listed as unresolved.
 */

const SCOPES: ReadonlyArray<TokenScope> = ["web", "admin", "operator", "worker"]

interface Fixtures {
  readonly orgId: string
  readonly session: string
  readonly artifact: string
  readonly pool: string
  readonly worker: string
  readonly credential: string
  readonly apiToken: string
  readonly workflow: string
  readonly trigger: string
  readonly account: string
  readonly binding: string
  readonly route: string
  readonly identity: string
  readonly command: string
}

interface Response {
  readonly status: number
  readonly body: string
}

/** One call; an event stream is cut after its headers (its status is what the matrix checks). */
const call = (method: string, path: string, token: string | undefined, body?: { readonly type: string; readonly data: string }) =>
  Effect.gen(function*() {
    const url = `${yield* baseUrl}${path}`
    return yield* Effect.promise(async (): Promise<Response> => {
      const controller = new AbortController()
      const headers: Record<string, string> = {}
      if (token !== undefined) headers.authorization = `Bearer ${token}`
      if (body !== undefined) headers["content-type"] = body.type
      const response = await fetch(url, { method, headers, body: body?.data, signal: controller.signal })
      if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
        controller.abort()
        return { status: response.status, body: "" }
      }
      return { status: response.status, body: await response.text() }
    })
  })

const json = (value: unknown) => ({ type: "application/json", data: JSON.stringify(value) })

/** A request body that passes the route's schema, so the handler (and its tenancy check) is reached. */
const bodyFor = (row: AuthorizationRow, own: Fixtures): { readonly type: string; readonly data: string } | undefined => {
  switch (`${row.group}.${row.name}`) {
    case "sessions.create":
      return json({})
    case "sessions.prompt":
      return json({ text: "hello" })
    case "sessionAsks.permissionRespond":
      return json({ permissionId: "per_matrix", response: "once" })
    case "sessionAsks.questionReply":
      return json({ requestId: "que_matrix", answers: [["yes"]] })
    case "sessionAsks.questionReject":
      return json({ requestId: "que_matrix" })
    case "artifacts.upload":
      return { type: "text/plain", data: "hello" }
    case "workerAdmin.createPool":
      return json({ name: "matrix", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 1 })
    case "workerAdmin.updatePool":
      return json({ maxConcurrentWork: 2 })
    case "workerAdmin.registerWorker":
      return json({ poolId: own.pool })
    case "workerAdmin.issueCredential":
    case "workerAdmin.rotateCredential":
      return json({})
    case "workflows.create":
      return json({ title: "matrix", instructions: "hi", agentName: "build", triggers: [{ type: "manual", enabled: true }] })
    case "workflows.run":
      return json({})
    case "members.update":
      return json({ role: "member" })
    case "channels.updateBinding":
      return json({ displayName: "renamed" })
    case "channels.bindSession":
      return json({ externalThreadId: "matrix-thread-2", sessionId: own.session })
    case "channels.reportBindingStatus":
      return json({ status: "error", detail: "matrix" })
    case "apiTokens.create":
      return json({ name: "matrix", scopes: ["admin"] })
    default:
      return row.method === "POST" || row.method === "PATCH" ? json({}) : undefined
  }
}

/** The concrete path for `row` over `fixtures`, or undefined when a path parameter has no fixture. */
const pathFor = (row: AuthorizationRow, fixtures: Fixtures): string | undefined => {
  const byParam = (param: string): string | undefined => {
    if (row.path.startsWith("/api/sessions/:id")) return param === "id" ? fixtures.session : param === "aid" ? fixtures.artifact : undefined
    if (row.path.startsWith("/api/admin/worker-pools/:id")) return param === "id" ? fixtures.pool : undefined
    if (row.path.startsWith("/api/admin/workers/:id")) return param === "id" ? fixtures.worker : param === "cid" ? fixtures.credential : undefined
    if (row.path.startsWith("/api/workflows/:id")) return param === "id" ? fixtures.workflow : param === "tid" ? fixtures.trigger : undefined
    if (row.path.startsWith("/api/members/:id")) return param === "id" ? fixtures.account : undefined
    if (row.path.startsWith("/api/api-tokens/:id")) return param === "id" ? fixtures.apiToken : undefined
    if (row.path.startsWith("/api/channels/bindings/:id")) return param === "id" ? fixtures.binding : param === "rid" ? fixtures.route : undefined
    if (row.path.startsWith("/api/channels/identities/:id")) return param === "id" ? fixtures.identity : undefined
    if (row.path.startsWith("/api/admin/orgs/:id")) return param === "id" ? fixtures.orgId : undefined
    if (row.path.startsWith("/api/admin/commands/:id")) return param === "id" ? fixtures.command : undefined
    return undefined
  }
  let unresolved = false
  const path = row.path.replace(/:(\w+)/g, (_, param: string) => {
    const value = byParam(param)
    if (value === undefined) unresolved = true
    return value ?? `missing-${param}`
  })
  return unresolved ? undefined : path
}

const hasParams = (row: AuthorizationRow) => row.path.includes(":")

/** An org with an admin token and one of every object the routes reach. */
const orgFixtures = Effect.gen(function*() {
  const tokens = yield* Tokens
  const identity = yield* Identity
  const { orgId } = yield* tokens.createOrg(`matrix-${globalThis.crypto.randomUUID().slice(0, 8)}`)
  const admin = Redacted.value((yield* tokens.issue({ orgId, name: "fixtures", scopes: ["web", "admin", "operator"] })).token)
  const send = (method: string, path: string, body: { readonly type: string; readonly data: string }) =>
    Effect.map(call(method, path, admin, body), (response) => {
      assert.isBelow(response.status, 300, `fixture ${method} ${path}: ${response.status} ${response.body}`)
      return JSON.parse(response.body)
    })
  const session = (yield* send("POST", "/api/sessions", json({}))).session.id as string
  const command = (yield* send("POST", `/api/sessions/${session}/prompt`, json({ text: "matrix" }))).commandId as string
  const artifact = (yield* send("POST", `/api/sessions/${session}/artifacts?name=a.txt`, { type: "text/plain", data: "hi" })).artifact.id as string
  const pool = (yield* send("POST", "/api/admin/worker-pools", json({ name: "p", mode: "self_hosted", maxWorkers: 4, maxConcurrentWork: 4 }))).pool.id as string
  const worker = (yield* send("POST", "/api/admin/workers", json({ poolId: pool }))).worker.id as string
  const credential = (yield* send("POST", `/api/admin/workers/${worker}/credentials`, json({}))).credential.id as string
  const apiToken = (yield* tokens.issue({ orgId, name: "target", scopes: ["web"] })).tokenId
  const created = yield* send("POST", "/api/workflows", json({
    title: "w",
    instructions: "hi",
    agentName: "build",
    triggers: [{ type: "webhook", enabled: true }]
  }))
  const account = yield* identity.upsertAccount({ issuer: "matrix", subject: globalThis.crypto.randomUUID(), email: null, name: null })
  yield* identity.setRole(orgId, account.id, "member")
  const binding = (yield* send("POST", "/api/channels/bindings", json({
    providerKind: "webhook",
    providerId: "matrix",
    displayName: "matrix",
    externalTarget: "https://example.com/hook"
  }))).binding.id as string
  const route = (yield* send("POST", `/api/channels/bindings/${binding}/sessions`, json({ externalThreadId: "matrix-thread", sessionId: session }))).route.id as string
  const channelIdentity = (yield* send("POST", "/api/channels/identities", json({
    providerKind: "webhook",
    providerId: "matrix",
    externalUserId: "matrix-user",
    accountId: account.id
  }))).identity.id as string
  return {
    orgId,
    session,
    artifact,
    pool,
    worker,
    credential,
    apiToken,
    workflow: created.workflow.id as string,
    trigger: created.workflow.triggers[0].id as string,
    account: account.id,
    binding,
    route,
    identity: channelIdentity,
    command
  } satisfies Fixtures
}).pipe(Effect.orDie)

it.layer(layer, { excludeTestServices: true })("authorization matrix", (it) => {
  it.effect("every authenticated route × principal kind × scope × own/other org answers as the rules say", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const rows = authorizationTable().filter((row) => row.audience !== "none")
      assert.isAbove(rows.length, 40, "the matrix covers the API")
      const other = yield* orgFixtures
      const problems: Array<string> = []
      const unresolved = new Set<string>()
      let cells = 0

      const check = (label: string, response: Response, ok: (status: number) => boolean, expected: string) => {
        cells++
        if (!ok(response.status)) problems.push(`${label}: expected ${expected}, got ${response.status} ${response.body.slice(0, 160)}`)
      }
      const allowedOwn = (status: number) => status !== 401 && status !== 403 && status !== 404 && status < 500

      for (const row of rows) {
        const own = yield* orgFixtures
        const ownPath = pathFor(row, own)
        const otherPath = pathFor(row, other)
        if (ownPath === undefined) unresolved.add(`${row.method} ${row.path}`)
        const path = ownPath ?? row.path.replace(/:(\w+)/g, "missing")
        const route = `${row.method} ${row.path}`

        check(`${route} without a token`, yield* call(row.method, path, undefined, bodyFor(row, own)), (s) => s === 401, "401")

        const principals: Array<{ readonly label: string; readonly token: string; readonly platform: boolean; readonly scopes: ReadonlyArray<TokenScope> }> = []
        for (const scope of SCOPES) {
          principals.push({
            label: `org token [${scope}]`,
            token: Redacted.value((yield* tokens.issue({ orgId: own.orgId, name: `matrix-${scope}`, scopes: [scope] }).pipe(Effect.orDie)).token),
            platform: false,
            scopes: [scope]
          })
        }
        principals.push({ label: "platform operator", token: yield* platformToken, platform: true, scopes: ["operator"] })

        // Another org's object first, own objects last (their calls may change state: revoke, retire, archive).
        for (const principal of principals) {
          const allowed = row.scopes.some((scope) => principal.scopes.includes(scope)) && !(principal.platform && row.audience === "org")
          const label = `${route} by ${principal.label}`
          if (!allowed) {
            check(label, yield* call(row.method, path, principal.token, bodyFor(row, own)), (s) => s === 403, "403")
            continue
          }
          if (hasParams(row) && otherPath !== undefined) {
            const response = yield* call(row.method, otherPath, principal.token, bodyFor(row, own))
            if (principal.platform) check(`${label} on another org's object`, response, allowedOwn, "allowed (platform)")
            else check(`${label} on another org's object`, response, (s) => s === 404, "404")
          }
        }
        for (const principal of principals) {
          const allowed = row.scopes.some((scope) => principal.scopes.includes(scope)) && !(principal.platform && row.audience === "org")
          if (!allowed || ownPath === undefined) continue
          check(`${route} by ${principal.label} on its own org's object`, yield* call(row.method, ownPath, principal.token, bodyFor(row, own)), allowedOwn, "allowed")
        }
      }
      if (unresolved.size > 0) console.warn(`authorization matrix: no fixture for ${[...unresolved].join(", ")} (checked for 401/403 only)`)
      assert.deepStrictEqual(problems, [])
      assert.isAbove(cells, 300)
    }), { timeout: 240_000 })
})
