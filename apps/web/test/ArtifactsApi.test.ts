import { BadRequest } from "@cowork/domain"
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

const { baseUrl, client, layer, orgWithToken, request } = await import("./support/WebTestServer.ts")

const upload = (
  token: string,
  sessionId: string,
  bytes: Uint8Array | ReadableStream<Uint8Array> | string | FormData,
  headers: Record<string, string>,
  name?: string
) =>
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

  it.effect("JSON {filename, contentType, dataBase64} and multipart/form-data uploads store the named file with its own type", () =>
    Effect.gen(function*() {
      const { token } = yield* orgWithToken(["web"])
      const session = (yield* request("POST", "/api/sessions", { token, body: {} })).body.session
      const json = (body: unknown) => upload(token, session.id, JSON.stringify(body), { "content-type": "application/json" })
      const text = new TextEncoder().encode('{"rows": [1, 2, 3]}')
      const viaJson = yield* json({ filename: "data.json", contentType: "application/json", dataBase64: Buffer.from(text).toString("base64") })
      assert.strictEqual(viaJson.status, 201, JSON.stringify(viaJson.body))
      assert.deepStrictEqual(
        [viaJson.body.artifact.name, viaJson.body.artifact.contentType, viaJson.body.artifact.sizeBytes],
        ["data.json", "application/json", text.length],
        "the decoded file, not the envelope"
      )
      const stored = yield* download(token, `/api/sessions/${session.id}/artifacts/${viaJson.body.artifact.id}`)
      assert.deepStrictEqual(stored.bytes, text)
      assert.strictEqual(stored.headers.get("content-type"), "application/json")

      // The limit applies to the decoded bytes: a body a bit over the limit as base64 but under it decoded is fine.
      const nearLimit = pattern(2 * 1024 * 1024 - 16)
      const big = yield* json({ filename: "big.bin", contentType: "application/octet-stream", dataBase64: Buffer.from(nearLimit).toString("base64") })
      assert.strictEqual(big.status, 201, JSON.stringify(big.body))
      assert.strictEqual(big.body.artifact.sizeBytes, nearLimit.length)
      const over = yield* json({ filename: "big.bin", contentType: "application/octet-stream", dataBase64: Buffer.from(pattern(2 * 1024 * 1024 + 1)).toString("base64") })
      assert.strictEqual(over.status, 413)
      assert.strictEqual(over.body.error.details.limitBytes, 2 * 1024 * 1024)
      const badBase64 = yield* json({ filename: "x.txt", contentType: "text/plain", dataBase64: "not base64!" })
      assert.strictEqual(badBase64.status, 400)
      assert.strictEqual(badBase64.body.error.details.field, "dataBase64")
      const html = yield* json({ filename: "x.html", contentType: "text/html", dataBase64: "PHA+" })
      assert.strictEqual(html.status, 415)
      const noName = yield* json({ contentType: "text/plain", dataBase64: "eA==" })
      assert.strictEqual(noName.status, 400)
      assert.strictEqual(noName.body.error.details.field, "filename")
      const pathName = yield* json({ filename: "../x.txt", contentType: "text/plain", dataBase64: "eA==" })
      assert.strictEqual(pathName.status, 400)

      const form = new FormData()
      form.append("note", "a field besides the file")
      form.append("file", new Blob(["id,total\n1,2\n"], { type: "text/csv" }), "totals.csv")
      const viaForm = yield* upload(token, session.id, form, {})
      assert.strictEqual(viaForm.status, 201, JSON.stringify(viaForm.body))
      assert.deepStrictEqual(
        [viaForm.body.artifact.name, viaForm.body.artifact.contentType, viaForm.body.artifact.sizeBytes],
        ["totals.csv", "text/csv", 13]
      )
      const formBytes = yield* download(token, `/api/sessions/${session.id}/artifacts/${viaForm.body.artifact.id}`)
      assert.strictEqual(new TextDecoder().decode(formBytes.bytes), "id,total\n1,2\n")
      const noFile = new FormData()
      noFile.append("note", "no file here")
      const missing = yield* upload(token, session.id, noFile, {})
      assert.strictEqual(missing.status, 400)
      assert.strictEqual(missing.body.error.details.field, "file")
      const bigForm = new FormData()
      bigForm.append("file", new Blob([pattern(2 * 1024 * 1024 + 1)], { type: "application/octet-stream" }), "big.bin")
      const tooBig = yield* upload(token, session.id, bigForm, {})
      assert.strictEqual(tooBig.status, 413)
      const htmlForm = new FormData()
      htmlForm.append("file", new Blob(["<p>"], { type: "text/html" }), "x.html")
      assert.strictEqual((yield* upload(token, session.id, htmlForm, {})).status, 415)

      // The typed client sends the JSON form and decodes the declared errors.
      const api = yield* client(token)
      const typed = yield* api.artifacts.upload({
        params: { id: session.id },
        query: {},
        payload: { filename: "typed.txt", contentType: "text/plain", dataBase64: Buffer.from("typed").toString("base64") }
      })
      assert.deepStrictEqual([typed.artifact.name, typed.artifact.sizeBytes], ["typed.txt", 5])
      const refused = yield* Effect.flip(api.artifacts.upload({
        params: { id: session.id },
        query: {},
        payload: { filename: "typed.txt", contentType: "text/plain", dataBase64: "%%%" }
      }))
      assert.instanceOf(refused, BadRequest)
      const names = (yield* request("GET", `/api/sessions/${session.id}/artifacts`, { token })).body.artifacts.map((a: any) => a.name)
      assert.sameMembers(names, ["data.json", "big.bin", "totals.csv", "typed.txt"], "refused uploads stored nothing")
    }))
})
