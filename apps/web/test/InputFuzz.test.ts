import { Api } from "@cowork/domain"
import { assert, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import * as Net from "node:net"
import { baseUrl, orgWithToken, request, serverLayer } from "./support/WebTestServer.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

/**
 * Bounded input fuzz over EVERY route of the API definition (new routes join automatically): each path parameter,
 * query field and top-level JSON body field gets each class of input Postgres or the JSON layer rejects (NUL bytes,
 * unpaired surrogates, over-long strings, malformed percent-encoding, deep nesting, non-decimal numbers). No answer
 * may be a 5xx; every error has the documented `{"error": {"code", "message"}}` shape; the text classes the database
 * would refuse are a 400 naming the field.
 */

interface Route {
  readonly name: string
  readonly method: string
  readonly path: string
  readonly params: ReadonlyArray<string>
  readonly query: ReadonlyArray<string>
  /** Top-level fields of a JSON body, or `undefined` when the route takes none (or a raw byte stream). */
  readonly body: ReadonlyArray<string> | undefined
  /** The route reads the raw body as bytes. */
  readonly bytes: boolean
}

const fieldsOf = (schema: Schema.Top | undefined): ReadonlyArray<string> => {
  if (schema === undefined) return []
  const ast = schema.ast
  return ast._tag === "Objects" ? ast.propertySignatures.map((property) => String(property.name)) : []
}

const routes: ReadonlyArray<Route> = Object.values(Api.groups).flatMap((group) =>
  Object.values(group.endpoints).map((endpoint): Route => {
    const json = [...endpoint.payload.values()].find((payload) => payload.encoding._tag === "Json")
    return {
      name: `${group.identifier}.${endpoint.identifier}`,
      method: endpoint.method,
      path: endpoint.path,
      params: [...endpoint.path.matchAll(/:(\w+)/g)].map((m) => m[1]!),
      query: fieldsOf(endpoint.query),
      body: json === undefined ? undefined : (json.schemas as ReadonlyArray<Schema.Top>).flatMap((schema) => fieldsOf(schema)),
      bytes: [...endpoint.payload.values()].some((payload) => payload.encoding._tag === "Stream")
    }
  })
)

/** Valid bodies for routes whose required fields would otherwise stop a request before its other fields are read. */
const baselineBodies: Record<string, Record<string, unknown>> = {
  "sessions.prompt": { text: "hello" },
  "sessionAsks.permissionRespond": { permissionId: "per_fuzz", response: "once" },
  "sessionAsks.questionReply": { requestId: "que_fuzz", answers: [["yes"]] },
  "sessionAsks.questionReject": { requestId: "que_fuzz" },
  "byok.store": { apiKey: "sk-fuzz-baseline" },
  "workerAdmin.createPool": { name: "fuzz", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 1 },
  "workerAdmin.registerWorker": { poolId: "pool_missing" },
  "workflows.create": { title: "fuzz", instructions: "fuzz", agentName: "build", triggers: [{ type: "manual", enabled: true }] },
  "apiTokens.create": { name: "fuzz", scopes: ["web"] },
  "members.invite": { email: "fuzz@example.com", role: "member" },
  "channels.createBinding": { providerKind: "webhook", providerId: "fuzz", displayName: "fuzz", externalTarget: "https://example.com/hook" },
  "channels.reportBindingStatus": { status: "active" },
  "channels.bindSession": { externalThreadId: "t", sessionId: "ses_missing" },
  "channels.prompt": { providerEventId: "e1", externalThreadId: "t", externalUserId: "u", text: "hi" },
  "channels.inbound": { providerEventId: "e1", externalThreadId: "t", externalUserId: "u", text: "hi", signatureKey: "s1" },
  "channels.answer": { providerEventId: "e1", externalThreadId: "t", externalUserId: "u", action: "question-reject", requestId: "r" },
  "channels.checkAnswer": { providerEventId: "e1", externalThreadId: "t", externalUserId: "u", action: "question-reject", requestId: "r" },
  "channels.claimProviderEvent": { channelBindingId: "chb_missing", providerEventId: "e1" },
  "channels.completeProviderEvent": { channelBindingId: "chb_missing", providerEventId: "e1", claimToken: "x", outcome: "ignored" },
  "channels.createIdentity": { providerKind: "telegram", providerId: "fuzz", externalUserId: "u", accountId: "acc_missing" },
  "channels.resolveIdentity": { channelBindingId: "chb_missing", externalUserId: "u" },
  "channels.ackDelivery": { claimToken: "x", outcome: "sent" },
  "channels.ackDeliveries": { acks: [{ id: "dlv_missing", claimToken: "x", outcome: "sent" }] },
  "channels.renewDelivery": { claimToken: "x" },
  "channels.putCursor": { channelBindingId: "chb_missing", name: "offset", value: "1" },
  "channels.createGatewayToken": { name: "fuzz", channelBindingIds: ["chb_missing"] }
}

const deepArray = (depth: number): string => "[".repeat(depth) + "]".repeat(depth)

/** Raw (already percent-encoded) URL values. `text: true` classes are ones the database would refuse: a 400. */
const urlValues: ReadonlyArray<{ readonly label: string; readonly raw: string; readonly text: boolean }> = [
  { label: "NUL", raw: "a%00b", text: true },
  // Not UTF-8: the router finds no route (404), a query value decodes with replacement characters.
  { label: "unpaired surrogate bytes", raw: "a%ED%A0%80b", text: false },
  { label: "malformed percent-encoding", raw: "a%ZZb", text: false },
  { label: "over-long", raw: "x".repeat(5_000), text: false },
  { label: "hex number", raw: "0x10", text: false },
  { label: "control characters", raw: "a%01%1Fb", text: false }
]

/** JSON body values, as raw JSON text (so unpaired surrogates survive). */
const bodyValues: ReadonlyArray<{ readonly label: string; readonly json: string; readonly text: boolean }> = [
  { label: "NUL", json: `"a\\u0000b"`, text: true },
  { label: "unpaired high surrogate", json: `"a\\ud800b"`, text: true },
  { label: "unpaired low surrogate", json: `"a\\udc00"`, text: true },
  { label: "over-long", json: JSON.stringify("x".repeat(200_000)), text: false },
  { label: "nested 5,000 deep", json: deepArray(5_000), text: false },
  { label: "object with a NUL key", json: `{"a\\u0000":1}`, text: false },
  { label: "huge number", json: "1e400", text: false }
]

/** What is wrong with the answer, or `undefined` when it is a proper one. */
const problemWith = (response: { status: number; body: any }, field?: string): string | undefined => {
  const shown = `${response.status} ${JSON.stringify(response.body)?.slice(0, 200)}`
  if (response.status >= 500 || response.status < 100) return shown
  if (response.status < 400) return field === undefined ? undefined : `accepted: ${shown}`
  if (typeof response.body?.error?.code !== "string" || typeof response.body?.error?.message !== "string") {
    return `not the error shape: ${shown}`
  }
  if (field !== undefined && (response.status !== 400 || !JSON.stringify(response.body.error).includes(field))) {
    return `expected a 400 naming \`${field}\`: ${shown}`
  }
  return undefined
}

/** One request over a raw socket, so the path is sent byte for byte as written. */
const rawRequest = (port: number, method: string, target: string, headers: Record<string, string>, body?: string) =>
  Effect.promise(() =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const socket = Net.connect(port, "127.0.0.1")
      const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"]
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
      if (body !== undefined) lines.push("Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`)
      socket.write(`${lines.join("\r\n")}\r\n\r\n${body ?? ""}`)
      const chunks: Array<Buffer> = []
      socket.on("data", (chunk) => chunks.push(chunk))
      socket.on("error", reject)
      socket.on("close", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
        const split = text.indexOf("\r\n\r\n")
        let payload = split < 0 ? "" : text.slice(split + 4)
        if (/transfer-encoding: chunked/i.test(text.slice(0, split))) {
          let decoded = ""
          let rest = payload
          while (true) {
            const lineEnd = rest.indexOf("\r\n")
            const size = parseInt(rest.slice(0, lineEnd), 16)
            if (!(size > 0)) break
            decoded += rest.slice(lineEnd + 2, lineEnd + 2 + size)
            rest = rest.slice(lineEnd + 2 + size + 2)
          }
          payload = decoded
        }
        let parsed: unknown = payload
        try {
          parsed = payload === "" ? undefined : JSON.parse(payload)
        } catch {
          parsed = payload
        }
        resolve({ status, body: parsed })
      })
    })
  )

/** One token sends the whole fuzz (hundreds of requests a minute): the per-caller limits are lifted here. */
const layer = serverLayer.pipe(
  Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({
    OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN: "1000000",
    OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN: "1000000"
  }), { asPrimary: true })),
  Layer.provideMerge(TestDatabase.layer())
)

it.layer(layer, { excludeTestServices: true })("input fuzz over every route", (it) => {
  it.effect("no 5xx and the documented error shape for every class of hostile input", () =>
    Effect.gen(function*() {
      // `gateway` too, so the gateway-only channel routes read their inputs.
      const { token } = yield* orgWithToken(["web", "admin", "operator", "gateway"])
      const session = (yield* request("POST", "/api/sessions", { token, body: { title: "fuzz" } })).body.session
      const port = Number(new URL(yield* baseUrl).port)
      const auth = { authorization: `Bearer ${token}` }
      const pathWith = (route: Route, overrides: Record<string, string> = {}) =>
        route.path.replace(/:(\w+)/g, (_, name: string) => overrides[name] ?? session.id)
      let requests = 0
      const failures: Array<string> = []
      const assertShape = (label: string, response: { status: number; body: any }, field?: string) => {
        const problem = problemWith(response, field)
        if (problem !== undefined) failures.push(`${label}: ${problem}`)
      }

      for (const route of routes) {
        if (route.method === "HEAD" || route.method === "OPTIONS") continue
        const baseline = baselineBodies[route.name] ?? {}
        // Byte-stream routes get a small JSON document (an allowed content type) so their query is what gets checked.
        const baselineJson = route.body === undefined && !route.bytes ? undefined : JSON.stringify(baseline)
        for (const param of route.params) {
          for (const value of urlValues) {
            const label = `${route.name} ${route.method} ${route.path} :${param}=${value.label}`
            const response = yield* rawRequest(port, route.method, pathWith(route, { [param]: value.raw }), auth, baselineJson)
            requests++
            assertShape(label, response, value.text ? param : undefined)
          }
        }
        for (const field of route.query) {
          for (const value of urlValues) {
            const label = `${route.name} ${route.method} ${route.path} ?${field}=${value.label}`
            const response = yield* rawRequest(port, route.method, `${pathWith(route)}?${field}=${value.raw}`, auth, baselineJson)
            requests++
            assertShape(label, response, value.text ? field : undefined)
          }
        }
        if (route.body === undefined) continue
        for (const field of route.body) {
          for (const value of bodyValues) {
            const label = `${route.name} ${route.method} ${route.path} body.${field}=${value.label}`
            const rest = JSON.stringify({ ...baseline, [field]: undefined }).slice(1, -1)
            const json = `{${rest}${rest === "" ? "" : ","}${JSON.stringify(field)}:${value.json}}`
            const response = yield* rawRequest(port, route.method, pathWith(route), auth, json)
            requests++
            assertShape(label, response, value.text ? field : undefined)
          }
        }
        for (const value of bodyValues) {
          const label = `${route.name} ${route.method} ${route.path} body=${value.label}`
          const response = yield* rawRequest(port, route.method, pathWith(route), auth, value.json)
          requests++
          assertShape(label, response)
        }
      }
      assert.deepStrictEqual(failures, [])
      assert.isAbove(requests, 300, "the fuzz covered the API")
    }), { timeout: 120_000 })
})

it.layer(layer, { excludeTestServices: true })("list cursors and limits", (it) => {
  it.effect("a malformed cursor is a 400 naming `cursor` (never the first page); `limit` is decimal only", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const first = (yield* request("POST", "/api/sessions", { token, body: { title: "one" } })).body.session
      const second = (yield* request("POST", "/api/sessions", { token, body: { title: "two" } })).body.session
      yield* request("POST", `/api/sessions/${first.id}/artifacts?name=a.txt`, { token, rawBody: "a", headers: { "content-type": "text/plain" } })
      yield* request("POST", `/api/sessions/${first.id}/artifacts?name=b.txt`, { token, rawBody: "b", headers: { "content-type": "text/plain" } })
      const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url")
      const badCursors: Record<string, ReadonlyArray<string>> = {
        "/api/sessions": ["zzzz", b64("not an id!"), b64("ses_x") + "=", "%00"],
        "/api/artifacts": ["abcd", b64(["xx", "y"]), b64(["2026-02-30T00:00:00.000000", "art_x"]), b64(["2026-01-01T00:00:00.000000", 5]), b64({})],
        [`/api/sessions/${first.id}/artifacts`]: ["abcd", b64(["2026-13-01T00:00:00.000000", "art_x"])]
      }
      for (const [path, cursors] of Object.entries(badCursors)) {
        for (const cursor of cursors) {
          const response = yield* request("GET", `${path}?cursor=${encodeURIComponent(cursor)}`, { token })
          assert.strictEqual(response.status, 400, `${path} cursor ${cursor}: ${JSON.stringify(response.body)}`)
          assert.strictEqual(response.body.error.details.field, "cursor")
        }
        for (const limit of ["0x10", "1e1", "+5", "5.0", " 5", "0", "-1"]) {
          const response = yield* request("GET", `${path}?limit=${encodeURIComponent(limit)}`, { token })
          assert.strictEqual(response.status, 400, `${path} limit ${limit}: ${JSON.stringify(response.body)}`)
          assert.strictEqual(response.body.error.details.field, "limit")
        }
      }

      // The cursors the lists hand out still page through them.
      const sessionsPage = yield* request("GET", "/api/sessions?limit=1", { token })
      assert.deepStrictEqual(sessionsPage.body.sessions.map((s: { id: string }) => s.id), [second.id])
      const sessionsNext = yield* request("GET", `/api/sessions?limit=1&cursor=${sessionsPage.body.nextCursor}`, { token })
      assert.deepStrictEqual(sessionsNext.body.sessions.map((s: { id: string }) => s.id), [first.id])
      const artifactsPage = yield* request("GET", "/api/artifacts?limit=1", { token })
      assert.strictEqual(artifactsPage.status, 200)
      assert.deepStrictEqual(artifactsPage.body.artifacts.map((a: { name: string }) => a.name), ["b.txt"])
      const artifactsNext = yield* request("GET", `/api/artifacts?limit=1&cursor=${artifactsPage.body.nextCursor}`, { token })
      assert.deepStrictEqual(artifactsNext.body.artifacts.map((a: { name: string }) => a.name), ["a.txt"])
    }))
})
