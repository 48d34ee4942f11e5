import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

it.layer(layer)("prompt multitaskStrategy", (it) => {
  it.effect("reject answers 409 naming the field while a prompt is queued; enqueue (the default) queues; agent is accepted", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token, body: {} })).body.session
      const path = `/api/sessions/${session.id}/prompt`

      // An idle session takes a prompt whatever the strategy (no worker runs here: it stays queued).
      const first = yield* request("POST", path, { token, body: { text: "first", agent: "plan", multitaskStrategy: "reject" } })
      assert.strictEqual(first.status, 202)
      const sql = yield* SqlClient.SqlClient
      const stored = yield* sql<{ payload: unknown }>`SELECT payload FROM cloud_session_commands WHERE id = ${first.body.commandId}`
      assert.deepStrictEqual(stored[0]!.payload, { text: "first", agent: "plan" }, "the agent rides with the command to the worker")
      const refused = yield* request("POST", path, { token, body: { text: "second", multitaskStrategy: "reject" } })
      assert.strictEqual(refused.status, 409)
      assert.strictEqual(refused.body.error.code, "conflict")
      assert.deepInclude(refused.body.error.details, { field: "multitaskStrategy" })
      assert.strictEqual((yield* request("POST", path, { token, body: { text: "third", multitaskStrategy: "enqueue" } })).status, 202)
      assert.strictEqual((yield* request("POST", path, { token, body: { text: "fourth" } })).status, 202)
      assert.strictEqual((yield* request("POST", path, { token, body: { text: "x", multitaskStrategy: "interrupt" } })).status, 202)
      assert.strictEqual((yield* request("POST", path, { token, body: { text: "x", multitaskStrategy: "preempt" } })).status, 400)
      assert.strictEqual((yield* request("POST", path, { token, body: { text: "x", agent: "not an agent!" } })).status, 400)
    }))
})
