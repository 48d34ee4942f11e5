import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"

// Read when the server layer is built: a private object store directory and a 2 MiB limit (above the 1 MiB JSON limit).
const objectsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-artifacts-"))
process.env.OPEN_COWORK_OBJECT_STORE_URI = pathToFileURL(objectsDir).href
process.env.OPEN_COWORK_CLOUD_ARTIFACT_MAX_BYTES = String(2 * 1024 * 1024)

const { baseUrl, layer, orgWithToken, request } = await import("./support/WebTestServer.ts")

const upload = (token: string, sessionId: string, bytes: Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string>, name?: string) =>
  Effect.gen(function*() {
    const url = `${yield* baseUrl}/api/sessions/${sessionId}/artifacts${name === undefined ? "" : `?name=${encodeURIComponent(name)}`}`
    return yield* Effect.promise(async () => {
      const response = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, ...headers },
        body: bytes,
        ...(bytes instanceof ReadableStream ? { duplex: "half" } : {})
      } as RequestInit)
      const text = await response.text()
      return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
    })
  })

const download = (token: string, path: string) =>
  Effect.gen(function*() {
    const url = `${yield* baseUrl}${path}`
    return yield* Effect.promise(async () => {
      const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
      return { status: response.status, headers: response.headers, bytes: new Uint8Array(await response.arrayBuffer()) }
    })
  })

const pattern = (size: number) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) % 251)

it.layer(layer)("artifacts API", (it) => {
  it.effect("upload, list, streamed download through the object store; artifact.created on the session stream", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const other = yield* orgWithToken(["web"])
      const sql = yield* SqlClient.SqlClient
      const session = (yield* request("POST", "/api/sessions", { token, body: { title: "files" } })).body.session
      const bytes = pattern(1_500_000)

      const created = yield* upload(token, session.id, bytes, { "content-type": "application/octet-stream" }, "report v1.bin")
      assert.strictEqual(created.status, 201)
      const artifact = created.body.artifact
      assert.deepStrictEqual([artifact.name, artifact.contentType, artifact.sizeBytes], ["report v1.bin", "application/octet-stream", 1_500_000])

      const ready = yield* request("GET", "/readyz")
      assert.deepStrictEqual(ready.body.checks.find((c: any) => c.name === "object_store"), { name: "object_store", status: "ok" })

      const fetched = yield* download(token, `/api/sessions/${session.id}/artifacts/${artifact.id}`)
      assert.strictEqual(fetched.status, 200)
      assert.strictEqual(fetched.headers.get("content-type"), "application/octet-stream")
      assert.include(fetched.headers.get("content-disposition")!, "report%20v1.bin")
      assert.deepStrictEqual(fetched.bytes, bytes)

      const storedFiles = Fs.readdirSync(objectsDir, { recursive: true }).map(String)
      assert.isTrue(storedFiles.some((file) => file.endsWith(artifact.id)), "the bytes are in the object store")

      const events = yield* sql<{ type: string; payload: any }>`SELECT type, payload FROM cloud_session_events WHERE session_id = ${session.id} ORDER BY sequence`
      const announced = events.find((event) => event.type === "artifact.created")
      assert.strictEqual(announced?.payload.artifactId, artifact.id)
      assert.strictEqual(announced?.payload.sizeBytes, 1_500_000)

      yield* upload(token, session.id, new TextEncoder().encode("# notes"), { "content-type": "text/markdown; charset=utf-8" }, "notes.md")
      const page1 = yield* request("GET", `/api/sessions/${session.id}/artifacts?limit=1`, { token })
      assert.strictEqual(page1.body.artifacts.length, 1)
      assert.strictEqual(page1.body.artifacts[0].name, "notes.md", "newest first")
      assert.strictEqual(page1.body.totalEstimate, 2)
      const page2 = yield* request("GET", `/api/sessions/${session.id}/artifacts?limit=1&cursor=${page1.body.nextCursor}`, { token })
      assert.deepStrictEqual(page2.body.artifacts.map((a: any) => a.id), [artifact.id])
      assert.isNull(page2.body.nextCursor)
      assert.strictEqual((yield* request("GET", "/api/artifacts", { token })).body.artifacts.length, 2)

      // Another org sees none of it.
      assert.strictEqual((yield* request("GET", "/api/artifacts", { token: other.token })).body.artifacts.length, 0)
      assert.strictEqual((yield* download(other.token, `/api/sessions/${session.id}/artifacts/${artifact.id}`)).status, 404)
      assert.strictEqual((yield* upload(other.token, session.id, bytes.subarray(0, 10), { "content-type": "text/plain" })).status, 404)
    }))

  it.effect("size limit 413 (declared and streamed), content type 415 naming it, missing content type 400", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token, body: {} })).body.session
      const tooBig = yield* upload(token, session.id, pattern(2 * 1024 * 1024 + 1), { "content-type": "application/octet-stream" })
      assert.strictEqual(tooBig.status, 413)
      assert.strictEqual(tooBig.body.error.details.limitBytes, 2 * 1024 * 1024)

      const chunks = [pattern(1024 * 1024), pattern(1024 * 1024), pattern(10)]
      const streamed = new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.shift()
          if (next === undefined) controller.close()
          else controller.enqueue(next)
        }
      })
      const chunked = yield* upload(token, session.id, streamed, { "content-type": "application/octet-stream" })
      assert.strictEqual(chunked.status, 413)

      const html = yield* upload(token, session.id, new TextEncoder().encode("<p>"), { "content-type": "text/html" })
      assert.strictEqual(html.status, 415)
      assert.include(html.body.error.message, "text/html")

      const untyped = yield* upload(token, session.id, new TextEncoder().encode("x"), {})
      assert.strictEqual(untyped.status, 400)
      assert.strictEqual(untyped.body.error.details.field, "content-type")

      const badName = yield* upload(token, session.id, new TextEncoder().encode("x"), { "content-type": "text/plain" }, "../etc/passwd")
      assert.strictEqual(badName.status, 400)
      assert.strictEqual((yield* request("GET", `/api/sessions/${session.id}/artifacts`, { token })).body.artifacts.length, 0, "nothing stored")
    }))
})
