import { authorizationTable, Conflict, DEFAULT_VIEW_MESSAGES, MAX_PROMPT_LENGTH, MAX_VIEW_MESSAGES, type SessionPage } from "@cowork/domain"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { baseUrl, client, layer, orgWithToken, request } from "./support/WebTestServer.ts"

it.layer(layer)("sessions API", (it) => {
  it.effect("health, readiness, request ids, OpenAPI and docs", () =>
    Effect.gen(function*() {
      const health = yield* request("GET", "/healthz")
      assert.strictEqual(health.status, 200)
      assert.deepStrictEqual(health.body, { ok: true, role: "web", profileName: "default" })
      assert.match(health.headers.get("x-request-id") ?? "", /.+/)
      const live = yield* request("GET", "/livez", { headers: { "x-request-id": "req-123" } })
      assert.strictEqual(live.status, 200)
      assert.strictEqual(live.headers.get("x-request-id"), "req-123")
      const beforeBootstrap = yield* request("GET", "/readyz")
      assert.strictEqual(beforeBootstrap.status, 503, "no live token yet: nobody could authenticate")
      assert.deepInclude(beforeBootstrap.body.checks, {
        name: "auth_config",
        status: "error",
        detail: "no live API token; bootstrap has not run"
      })
      yield* orgWithToken(["web"])
      const ready = yield* request("GET", "/readyz")
      assert.strictEqual(ready.status, 200)
      assert.deepStrictEqual(ready.body.checks, [
        { name: "control_plane", status: "ok" },
        { name: "auth_config", status: "ok" },
        { name: "role_dependencies", status: "ok" },
        { name: "object_store", status: "ok" },
        { name: "secret_adapter", status: "ok" }
      ])
      const openapi = yield* request("GET", "/openapi.json")
      assert.strictEqual(openapi.status, 200)
      assert.property(openapi.body.paths, "/api/sessions/{id}/prompt")
      const docs = yield* request("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      const table = authorizationTable()
      assert.deepInclude(table, { group: "health", name: "readyz", method: "GET", path: "/readyz", audience: "none", scopes: [] })
      assert.deepInclude(table, {
        group: "sessions",
        name: "prompt",
        method: "POST",
        path: "/api/sessions/:id/prompt",
        audience: "org",
        scopes: ["web", "admin"]
      })
      // `/api/config` is the one public /api route: the bootstrap a client reads before it can sign in.
      const publicApi = new Set(["/api/config"])
      assert.deepStrictEqual(
        table.filter((row) => row.path.startsWith("/api/") && row.scopes.length === 0).map((row) => row.path),
        [...publicApi],
        "every other /api route needs a scope"
      )
      const missing = yield* request("GET", "/no/such/route")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.body.error.code, "not_found")
      assert.isNotNull(missing.headers.get("x-request-id"))
    }))

  it.effect("401 without or with a bad token, 403 without the scope, 404 for another org's session", () =>
    Effect.gen(function*() {
      const none = yield* request("GET", "/api/sessions")
      assert.strictEqual(none.status, 401)
      assert.strictEqual(none.body.error.code, "unauthorized")
      const bad = yield* request("GET", "/api/sessions", { token: "occ_AAAAAAAAAAAA_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" })
      assert.strictEqual(bad.status, 401)
      const garbage = yield* request("GET", "/api/sessions", { token: "nonsense" })
      assert.strictEqual(garbage.status, 401)
      const operator = yield* orgWithToken(["operator"])
      const forbidden = yield* request("GET", "/api/sessions", { token: operator.token })
      assert.strictEqual(forbidden.status, 403)
      assert.strictEqual(forbidden.body.error.code, "forbidden")
      const admin = yield* orgWithToken(["admin"])
      assert.strictEqual((yield* request("GET", "/api/sessions", { token: admin.token })).status, 200)

      const alice = yield* orgWithToken(["web"])
      const bob = yield* orgWithToken(["web"])
      const created = yield* request("POST", "/api/sessions", { token: alice.token, body: { title: "alice's" } })
      assert.strictEqual(created.status, 201)
      const id = created.body.session.id
      for (const path of [`/api/sessions/${id}`, `/api/sessions/${id}/view`, `/api/sessions/${id}/events`]) {
        const other = yield* request("GET", path, { token: bob.token })
        assert.strictEqual(other.status, 404, path)
        assert.strictEqual(other.body.error.code, "not_found")
      }
      assert.strictEqual((yield* request("POST", `/api/sessions/${id}/prompt`, { token: bob.token, body: { text: "hi" } })).status, 404)
      assert.strictEqual((yield* request("POST", `/api/sessions/${id}/abort`, { token: bob.token })).status, 404)
    }))

  it.effect("creates, gets, views and lists sessions with keyset pagination and filters", () =>
    Effect.gen(function*() {
      const { orgId, token } = yield* orgWithToken(["web"])
      const api = yield* client(token)
      const { session } = yield* api.sessions.create({
        payload: { title: "Alpha report", profileName: "research", projectSource: { git: "https://example.com/repo.git" } }
      })
      assert.strictEqual(session.orgId, orgId)
      assert.strictEqual(session.title, "Alpha report")
      assert.strictEqual(session.profileName, "research")
      assert.strictEqual(session.status, "idle")
      assert.strictEqual(session.lastSequence, 1)
      const defaults = yield* api.sessions.create({ payload: {} })
      assert.strictEqual(defaults.session.profileName, "default")
      for (let i = 0; i < 5; i++) yield* api.sessions.create({ payload: { title: `Beta ${i}` } })

      const got = yield* api.sessions.get({ params: { id: session.id } })
      assert.deepStrictEqual(got.session, session)
      const view = yield* api.sessions.view({ params: { id: session.id }, query: {} })
      assert.strictEqual(view.status, "idle")
      assert.strictEqual(view.projectedSequence, 1)
      assert.deepStrictEqual(view.messages, [])

      const seen: Array<string> = []
      let cursor: string | undefined = undefined
      let pages = 0
      do {
        const page: typeof SessionPage.Type = yield* api.sessions.list({ query: { limit: 3, cursor } })
        assert.strictEqual(page.totalEstimate, 7)
        assert.isAtMost(page.sessions.length, 3)
        seen.push(...page.sessions.map((s) => s.id))
        cursor = page.nextCursor ?? undefined
        pages++
      } while (cursor !== undefined)
      assert.strictEqual(pages, 3)
      assert.strictEqual(seen.length, 7)
      assert.strictEqual(new Set(seen).size, 7, "no session appears twice across pages")
      assert.strictEqual(seen[seen.length - 1], session.id, "newest first")

      const byProfile = yield* api.sessions.list({ query: { profileName: "research" } })
      assert.deepStrictEqual(byProfile.sessions.map((s) => s.id), [session.id])
      const byText = yield* api.sessions.list({ query: { q: "beta" } })
      assert.strictEqual(byText.sessions.length, 5)
      assert.strictEqual(byText.totalEstimate, 5)
      const wildcard = yield* api.sessions.list({ query: { q: "%" } })
      assert.strictEqual(wildcard.sessions.length, 0, "LIKE wildcards in q are literal")
      yield* api.sessions.abort({ params: { id: session.id } })
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE cloud_session_projections SET status = 'aborted' WHERE session_id = ${session.id}`
      const aborted = yield* api.sessions.list({ query: { status: "aborted" } })
      assert.deepStrictEqual(aborted.sessions.map((s) => s.id), [session.id])
      const badStatus = yield* request("GET", "/api/sessions?status=bogus", { token })
      assert.strictEqual(badStatus.status, 400)
      assert.strictEqual(badStatus.body.error.details.field, "status")
    }))

  it.effect("a long session's view holds its newest messages and a cursor to the older ones; the pages join with no gap or repeat", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const api = yield* client(token)
      const id = (yield* api.sessions.create({ payload: { title: "long" } })).session.id
      // A long history as the projection holds it: DEFAULT_VIEW_MESSAGES + 5 messages, two of them on one sequence.
      const total = DEFAULT_VIEW_MESSAGES + 5
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(
        `INSERT INTO cloud_session_projection_messages (session_id, message_id, role, text, command_id, attempt, sequence)
         SELECT $1, 'msg_' || lpad(g::text, 4, '0'), CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END, 'text ' || g, NULL, NULL,
           CASE WHEN g = 3 THEN 5 ELSE g + 1 END
         FROM generate_series(1, $2::int) g`,
        [id, total]
      )
      yield* sql.unsafe(`UPDATE cloud_session_projections SET projected_sequence = $2, last_sequence = $2 WHERE session_id = $1`, [id, total + 1])
      const expected = Array.from({ length: total }, (_, i) => `text ${i + 1}`)

      const newest = yield* api.sessions.view({ params: { id }, query: {} })
      assert.deepStrictEqual(newest.messages.map((m) => m.text), expected.slice(-DEFAULT_VIEW_MESSAGES), "exactly the newest page, oldest first")
      assert.strictEqual(newest.projectedSequence, total + 1, "the resume cursor is the log's, not the page's")
      assert.isString(newest.nextCursor)
      const older = yield* request("GET", `/api/sessions/${id}/view?cursor=${newest.nextCursor}`, { token })
      assert.strictEqual(older.status, 200)
      assert.deepStrictEqual(older.body.messages.map((m: { text: string }) => m.text), expected.slice(0, 5))
      assert.strictEqual(older.body.nextCursor, null, "the first message reached")
      const joined: Array<string> = []
      let cursor: string | undefined
      do {
        const page = yield* api.sessions.view({ params: { id }, query: { limit: 2, cursor } })
        joined.unshift(...page.messages.map((m) => m.text))
        cursor = page.nextCursor ?? undefined
      } while (cursor !== undefined)
      assert.deepStrictEqual(joined, expected, "pages of 2 (a sequence tie split across pages too) join with no gap or repeat")
      const all = yield* request("GET", `/api/sessions/${id}/view?limit=${MAX_VIEW_MESSAGES}`, { token })
      assert.deepStrictEqual([all.body.messages.length, all.body.nextCursor], [total, null])

      for (const [query, field] of [
        ["limit=0", "limit"], [`limit=${MAX_VIEW_MESSAGES + 1}`, "limit"], ["limit=abc", "limit"], ["limit=1e2", "limit"],
        ["cursor=%25%25", "cursor"], [`cursor=${"A".repeat(400)}`, "cursor"], ["cursor=WzEsMl0", "cursor"]
      ] as const) {
        const bad = yield* request("GET", `/api/sessions/${id}/view?${query}`, { token })
        assert.strictEqual(bad.status, 400, query)
        assert.strictEqual(bad.body.error.details.field, field, query)
      }
      const other = yield* orgWithToken(["web"])
      const foreign = yield* request("GET", `/api/sessions/${id}/view?limit=2&cursor=${newest.nextCursor}`, { token: other.token })
      assert.strictEqual(foreign.status, 404, "another org's session is 404, cursor or not")
    }))

  it.effect("a repeated prompt with the same idempotency key returns the same command and inserts one row; a different body under the key is 409", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const api = yield* client(token)
      const id = (yield* api.sessions.create({ payload: { title: "p" } })).session.id
      const prompt = (text: string, idempotencyKey?: string) => api.sessions.prompt({ params: { id }, payload: { text, idempotencyKey } })
      const first = yield* prompt("hello", "k-1")
      assert.match(first.commandId, /^cmd_/)
      const repeats = yield* Effect.all(Array.from({ length: 4 }, () => prompt("hello", "k-1")), { concurrency: "unbounded" })
      for (const repeat of repeats) assert.strictEqual(repeat.commandId, first.commandId)
      const reused = yield* request("POST", `/api/sessions/${id}/prompt`, { token, body: { text: "a different prompt", idempotencyKey: "k-1" } })
      assert.strictEqual(reused.status, 409, "the same key with a different body is refused, not answered with the old command")
      assert.strictEqual(reused.body.error.code, "conflict")
      assert.include(reused.body.error.message, "k-1")
      assert.deepStrictEqual(reused.body.error.details, { field: "idempotencyKey", idempotencyKey: "k-1" })
      const reusedTyped = yield* Effect.flip(prompt("another different prompt", "k-1"))
      assert.instanceOf(reusedTyped, Conflict)
      const other = yield* prompt("again")
      assert.notStrictEqual(other.commandId, first.commandId)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ id: string; kind: string; payload: any }>`
        SELECT id, kind, payload FROM cloud_session_commands WHERE session_id = ${id} ORDER BY position`
      assert.deepStrictEqual(rows.map((r) => r.id), [first.commandId, other.commandId])
      assert.deepStrictEqual(rows[0]!.payload, { text: "hello" })
      const events = yield* sql<{ type: string; payload: any }>`
        SELECT type, payload FROM cloud_session_events WHERE session_id = ${id} ORDER BY sequence`
      assert.deepStrictEqual(events.map((e) => e.type), ["session.created", "prompt.submitted", "prompt.submitted"])
      assert.deepStrictEqual(events[1]!.payload, { commandId: first.commandId, text: "hello" })
      const view = yield* api.sessions.view({ params: { id }, query: {} })
      assert.strictEqual(view.status, "queued")
      assert.deepStrictEqual(view.messages.map((m) => m.text), ["hello", "again"])
    }))

  it.effect("abort cancels pending prompts and queues an abort command; a later prompt is 409", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const api = yield* client(token)
      const id = (yield* api.sessions.create({ payload: {} })).session.id
      const prompt = yield* api.sessions.prompt({ params: { id }, payload: { text: "work", idempotencyKey: "before-abort" } })
      const abort = yield* api.sessions.abort({ params: { id } })
      const again = yield* api.sessions.abort({ params: { id } })
      assert.strictEqual(again.commandId, abort.commandId, "abort is idempotent")
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ id: string; kind: string; status: string }>`
        SELECT id, kind, status FROM cloud_session_commands WHERE session_id = ${id} ORDER BY position`
      assert.deepStrictEqual(rows.map((r) => [r.id, r.kind, r.status]), [
        [prompt.commandId, "prompt", "cancelled"],
        [abort.commandId, "abort", "pending"]
      ])
      const late = yield* Effect.flip(api.sessions.prompt({ params: { id }, payload: { text: "more" } }))
      assert.instanceOf(late, Conflict)
      assert.include(late.message, "aborted")
      // The idempotency key is answered before the abort check (docs/architecture.md §1): a retried request gets
      // the answer the first one got; another text under the key is the key's conflict, not the abort's.
      const retried = yield* api.sessions.prompt({ params: { id }, payload: { text: "work", idempotencyKey: "before-abort" } })
      assert.strictEqual(retried.commandId, prompt.commandId)
      const reused = yield* Effect.flip(api.sessions.prompt({ params: { id }, payload: { text: "other", idempotencyKey: "before-abort" } }))
      assert.instanceOf(reused, Conflict)
      assert.deepStrictEqual(reused.details, { field: "idempotencyKey", idempotencyKey: "before-abort" })
    }))

  it.effect("bad input is a 4xx with the error shape, never a 500", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const id = (yield* request("POST", "/api/sessions", { token, body: {} })).body.session.id
      const path = `/api/sessions/${id}/prompt`

      const missing = yield* request("POST", path, { token, body: {} })
      assert.strictEqual(missing.status, 400)
      assert.strictEqual(missing.body.error.code, "bad_request")
      assert.strictEqual(missing.body.error.details.field, "text")
      assert.include(missing.body.error.message, "text")
      const wrongType = yield* request("POST", path, { token, body: { text: 42 } })
      assert.strictEqual(wrongType.status, 400)
      assert.strictEqual(wrongType.body.error.details.field, "text")
      const empty = yield* request("POST", path, { token, body: { text: "" } })
      assert.strictEqual(empty.status, 400)
      const nul = yield* request("POST", path, { token, body: { text: "a\u0000b" } })
      assert.strictEqual(nul.status, 400)
      const invalidJson = yield* request("POST", path, { token, rawBody: "{not json" })
      assert.strictEqual(invalidJson.status, 400)
      assert.strictEqual(invalidJson.body.error.code, "bad_request")
      const longKey = yield* request("POST", path, { token, body: { text: "x", idempotencyKey: "k".repeat(500) } })
      assert.strictEqual(longKey.status, 400)
      assert.strictEqual(longKey.body.error.details.field, "idempotencyKey")
      const longTitle = yield* request("POST", "/api/sessions", { token, body: { title: "t".repeat(1000) } })
      assert.strictEqual(longTitle.status, 400)
      assert.strictEqual(longTitle.body.error.details.field, "title")
      const badLimit = yield* request("GET", "/api/sessions?limit=abc", { token })
      assert.strictEqual(badLimit.status, 400)
      assert.strictEqual(badLimit.body.error.details.field, "limit")
      const hugeLimit = yield* request("GET", "/api/sessions?limit=100000", { token })
      assert.strictEqual(hugeLimit.status, 400)
      const badCursor = yield* request("GET", "/api/sessions?cursor=%25%25", { token })
      assert.strictEqual(badCursor.status, 400)
      const textType = yield* request("POST", path, { token, rawBody: "text", headers: { "content-type": "text/plain" } })
      assert.strictEqual(textType.status, 415)
      assert.strictEqual(textType.body.error.code, "unsupported_media_type")

      const tooLongPrompt = yield* request("POST", path, { token, body: { text: "x".repeat(MAX_PROMPT_LENGTH + 1) } })
      assert.strictEqual(tooLongPrompt.status, 413)
      assert.strictEqual(tooLongPrompt.body.error.code, "payload_too_large")
      const hugeBody = yield* request("POST", path, { token, body: { text: "x", padding: "y".repeat(2 * 1024 * 1024) } })
      assert.strictEqual(hugeBody.status, 413)
      assert.strictEqual(hugeBody.body.error.code, "payload_too_large")
      assert.isNotNull(hugeBody.headers.get("x-request-id"))
      const url = `${yield* baseUrl}${path}`
      const chunked = yield* Effect.promise(async () => {
        const chunk = new TextEncoder().encode("y".repeat(64 * 1024))
        let sent = 0
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent++ < 40) controller.enqueue(chunk)
            else controller.close()
          }
        })
        const response = await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body,
          duplex: "half"
        } as RequestInit)
        return { status: response.status, body: await response.json() as any }
      })
      assert.strictEqual(chunked.status, 413, "a chunked body without Content-Length is limited while it is read")
      assert.strictEqual(chunked.body.error.code, "payload_too_large")

      const unknown = yield* request("POST", "/api/sessions/ses_doesnotexist/prompt", { token, body: { text: "hi" } })
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body.error.code, "not_found")
      const unknownGet = yield* request("GET", "/api/sessions/ses_doesnotexist", { token })
      assert.strictEqual(unknownGet.status, 404)
    }))
})
