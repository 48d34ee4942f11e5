import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { layer, orgWithToken, request } from "./support/WebTestServer.ts"

it.layer(layer)("threads API", (it) => {
  it.effect("lists the org's sessions as threads with tags, smart filters and tag counts; PATCH renames and re-tags; org-scoped", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const { token: strangerToken } = yield* orgWithToken(["web"])
      const create = (body: unknown, as = token) => request("POST", "/api/sessions", { token: as, body })
      const first = (yield* create({ title: "Quarterly report", tags: ["research", "q3"] })).body.session
      const second = (yield* create({ title: "notes", tags: ["q3"] })).body.session
      yield* create({ title: "someone else's", tags: ["research"] }, strangerToken)

      const page = yield* request("GET", "/api/threads?limit=1", { token })
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.body.totalEstimate, 2)
      assert.strictEqual(page.body.threads.length, 1)
      const next = yield* request("GET", `/api/threads?limit=1&cursor=${page.body.nextCursor}`, { token })
      assert.sameMembers([page.body.threads[0].id, next.body.threads[0].id], [first.id, second.id])
      assert.isNull(next.body.nextCursor)
      const thread = [page.body.threads[0], next.body.threads[0]].find((t: any) => t.id === first.id)
      assert.deepInclude(thread, { title: "Quarterly report", status: "idle", tags: ["research", "q3"] })
      assert.match(thread.createdBy, /^token:/)

      const research = yield* request("GET", "/api/threads?tag=research", { token })
      assert.deepStrictEqual(research.body.threads.map((t: any) => t.id), [first.id], "another org's session never shows")
      const mine = yield* request("GET", "/api/threads?filter=mine", { token })
      assert.strictEqual(mine.body.threads.length, 2, "created with this token")
      const tags = yield* request("GET", "/api/threads/tags", { token })
      assert.deepStrictEqual(tags.body.tags, [{ tag: "q3", count: 2 }, { tag: "research", count: 1 }])
      const filters = yield* request("GET", "/api/threads/smart-filters", { token })
      assert.deepStrictEqual(filters.body.filters.map((f: any) => [f.id, f.count, f.query]), [
        ["running", 0, "filter=running"], ["failed", 0, "filter=failed"], ["mine", 2, "filter=mine"], ["recent", 2, "filter=recent"]
      ])

      const patched = yield* request("PATCH", `/api/sessions/${second.id}`, { token, body: { title: "Renamed", tags: ["ops"] } })
      assert.strictEqual(patched.status, 200)
      assert.deepInclude(patched.body.thread, { id: second.id, title: "Renamed", tags: ["ops"] })
      assert.strictEqual((yield* request("GET", `/api/sessions/${second.id}`, { token })).body.session.title, "Renamed")
      assert.strictEqual((yield* request("PATCH", `/api/sessions/${second.id}`, { token: strangerToken, body: { title: "x" } })).status, 404)

      const badTag = yield* request("PATCH", `/api/sessions/${second.id}`, { token, body: { tags: ["Not A Tag"] } })
      assert.strictEqual(badTag.status, 400)
      assert.strictEqual(badTag.body.error.details.field, "tags.0", "names the field (and the element)")
      const badCreate = yield* create({ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) })
      assert.strictEqual(badCreate.status, 400)
      assert.strictEqual(badCreate.body.error.details.field, "tags")
      const badFilter = yield* request("GET", "/api/threads?filter=everything", { token })
      assert.strictEqual(badFilter.status, 400)
      assert.strictEqual(badFilter.body.error.details.field, "filter")
      assert.strictEqual((yield* request("GET", "/api/threads")).status, 401)
    }))
})
