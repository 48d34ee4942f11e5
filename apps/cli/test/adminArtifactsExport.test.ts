import { Metrics } from "@cowork/observability"
import { Database, PgArtifacts, PgSessionStore, PgTokens } from "@cowork/postgres"
import { Artifacts, ObjectStore, SessionStore, Tokens } from "@cowork/services"
import { FileObjectStore, S3ObjectStore } from "@cowork/storage"
import { assert, describe, it } from "@effect/vitest"
import { afterAll } from "vitest"
import { Effect, Layer, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { LocalS3Server, settingsFor, TEST_BUCKET } from "../../../packages/storage/test/support/LocalS3Server.ts"
import { within } from "../../../test/support/Eventually.ts"
import { runCli, runCliExit, spawn } from "../../../test/support/CoworkProcess.ts"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"

/**
 * `cowork admin artifacts export` and `admin org offboard --artifacts export` as real processes against real Postgres,
 * over the real S3 protocol (s3rver) and the file store: bytes and manifest verified against the rows, a corrupted or
 * missing object reported and left out, a SIGKILLed export resumed, another org's artifacts never written.
 */

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!)
const sha256 = (bytes: Uint8Array) => Crypto.createHash("sha256").update(bytes).digest("hex")
const created: Array<string> = []
const tempDir = (name: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `cowork-export-${name}-`))
  created.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of created) Fs.rmSync(dir, { recursive: true, force: true })
})

/** Every file under `dir`, relative, sorted. */
const filesUnder = (dir: string): ReadonlyArray<string> =>
  (Fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<Fs.Dirent>)
    .filter((entry) => entry.isFile())
    .map((entry) => Path.relative(dir, Path.join(entry.parentPath, entry.name)))
    .sort()

const manifestOf = (dir: string) =>
  Fs.readFileSync(Path.join(dir, "manifest.jsonl"), "utf8").trim().split("\n").filter((line) => line !== "").map((line) =>
    JSON.parse(line) as { id: string; sessionId: string; name: string; sizeBytes: number; sha256: string; path: string }
  )

/** Org/session/artifact writers over the test's database and object store. */
const seeding = (url: string, store: Layer.Layer<ObjectStore>) =>
  Layer.mergeAll(PgTokens.layer, PgSessionStore.layer, PgArtifacts.layer).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "export-test" }))
  )

const newOrgWithSession = (name: string) =>
  Effect.gen(function*() {
    const { orgId } = yield* (yield* Tokens).createOrg(name)
    const session = yield* (yield* SessionStore).create(orgId, {})
    return { orgId, sessionId: session.id }
  })

const upload = (at: { readonly orgId: string; readonly sessionId: string }, name: string, bytes: Uint8Array) =>
  Effect.flatMap(Effect.service(Artifacts), (artifacts) =>
    artifacts.create({
      ...at,
      name,
      contentType: "application/octet-stream",
      createdBy: "test",
      // Several chunks, as a real upload arrives.
      body: Stream.fromIterable([bytes.subarray(0, 100_000), bytes.subarray(100_000)]),
      maxBytes: 10_000_000
    })).pipe(Effect.orDie)

/** Bytes of the stalled object that reach the export before the stall. */
const STALL_AFTER_BYTES = 16_384

/**
 * An HTTP proxy in front of the S3 server that stalls the `stallAt`-th object GET under `prefix` after passing its
 * headers and its first 16 KiB: the export is then mid-object when the test kills it. `stalled` is that object's key.
 */
const stallingProxy = (target: string, prefix: string, stallAt: number) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly endpoint: string; readonly stalled: () => string | undefined; readonly server: Http.Server }>((resolve) => {
        let gets = 0
        let stalled: string | undefined
        const server = Http.createServer((request, response) => {
          const nth = request.method === "GET" && request.url?.startsWith(prefix) === true ? ++gets : 0
          const upstream = Http.request(`${target}${request.url}`, { method: request.method, headers: request.headers }, (answer) => {
            response.writeHead(answer.statusCode ?? 502, answer.headers)
            if (nth !== stallAt) return void answer.pipe(response)
            answer.once("data", (chunk: Buffer) => {
              answer.pause()
              response.write(chunk.subarray(0, STALL_AFTER_BYTES), () => (stalled = request.url!.slice(prefix.length).split("?")[0]))
            })
          })
          upstream.on("error", () => response.destroy())
          request.pipe(upstream)
        })
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as { port: number }).port
          resolve({ endpoint: `http://127.0.0.1:${port}`, stalled: () => stalled, server })
        })
      })
    ),
    ({ server }) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
      )
  )

describe("cowork admin artifacts export", () => {
  it.live(
    "S3: exports only the org's artifacts, verified; reports a corrupted and a missing object; a killed export resumes; --since; refusals",
    () =>
      Effect.gen(function*() {
        const url = yield* freshDatabaseUrl
        yield* runCli(["migrate"], { OPEN_COWORK_DATABASE_URL: url })
        const s3 = yield* LocalS3Server
        const prefix = "export/"
        const store = S3ObjectStore.layer(settingsFor(s3.endpoint, prefix)).pipe(Layer.provide(Metrics.layerTest("all")))
        const s3Env = (endpoint: string) => ({
          OPEN_COWORK_DATABASE_URL: url,
          OPEN_COWORK_OBJECT_STORE_URI: `s3://${TEST_BUCKET}/${prefix}`,
          OPEN_COWORK_OBJECT_STORE_ENDPOINT: endpoint,
          OPEN_COWORK_OBJECT_STORE_FORCE_PATH_STYLE: "true",
          OPEN_COWORK_OBJECT_STORE_ACCESS_KEY_ID: "S3RVER",
          OPEN_COWORK_OBJECT_STORE_SECRET_ACCESS_KEY: "S3RVER"
        })

        // Org A: a missing object and a corrupted one (the oldest), then six good ones; org B: two of its own.
        const content = new Map<string, Uint8Array>()
        const seeded = yield* Effect.gen(function*() {
          const a = yield* newOrgWithSession("exporting")
          const b = yield* newOrgWithSession("other")
          const add = (at: typeof a, name: string) =>
            Effect.gen(function*() {
              const bytes = Crypto.randomBytes(150_000 + content.size * 1_000)
              const artifact = yield* upload(at, name, bytes)
              content.set(artifact.id, bytes)
              return artifact
            })
          const missing = yield* add(a, "missing.bin")
          const corrupted = yield* add(a, "corrupted.bin")
          const good: Array<string> = []
          for (let i = 0; i < 6; i++) good.push((yield* add(a, `good-${i}.bin`)).id)
          const foreign = [(yield* add(b, "b-0.bin")).id, (yield* add(b, "b-1.bin")).id]
          const objects = yield* ObjectStore
          yield* objects.delete(`artifacts/${a.orgId}/${a.sessionId}/${missing.id}`)
          // Same size, one byte changed: only the sha256 tells.
          const tampered = Uint8Array.from(content.get(corrupted.id)!)
          tampered[1_000] = tampered[1_000]! ^ 0xff
          yield* objects.put(`artifacts/${a.orgId}/${a.sessionId}/${corrupted.id}`, tampered)
          // Bytes under the org's prefix that no row names (a failed upload's leftover): an orphan, reported, not exported.
          const orphan = `artifacts/${a.orgId}/${a.sessionId}/art_orphan`
          yield* objects.put(orphan, new TextEncoder().encode("no row names me"))
          return { a, b, missing: missing.id, corrupted: corrupted.id, good, foreign, orphan }
        }).pipe(Effect.provide(seeding(url, store)))

        // A first export, SIGKILLed while the third object is half-written.
        const dir = tempDir("s3")
        const proxy = yield* stallingProxy(s3.endpoint, `/${TEST_BUCKET}/${prefix}artifacts/`, 3)
        const first = yield* spawn("export", ["admin", "artifacts", "export", "--org", seeded.a.orgId, "--to", dir], s3Env(proxy.endpoint))
        const finals = () => filesUnder(dir).filter((file) => file.startsWith("files/") && !file.endsWith(".part"))
        // The stalled object's key is `<session>/<artifact>` under the org's prefix: its part file holds the first bytes.
        const stalledPart = () => {
          const key = proxy.stalled()
          return key === undefined ? undefined : Path.join(dir, "files", key.split("/").slice(1).join("/") + ".part")
        }
        yield* within(
          Effect.sync(() => {
            const part = stalledPart()
            return part !== undefined && Fs.existsSync(part) && Fs.statSync(part).size === STALL_AFTER_BYTES && finals().length >= 2
          }),
          `the export to stall mid-object with two objects done\n${first.output()}`,
          60_000
        )
        first.child.kill("SIGKILL")
        assert.strictEqual(yield* Effect.promise(() => first.exited), "SIGKILL")
        const leftByKill = filesUnder(dir)
        assert.notInclude(leftByKill, "manifest.jsonl", "the killed run wrote no manifest")
        // Its lock names a process that is gone: the next run takes it over.
        assert.strictEqual(JSON.parse(Fs.readFileSync(Path.join(dir, "export.lock"), "utf8")).pid, first.child.pid)
        assert.include(leftByKill, Path.relative(dir, stalledPart()!))
        assert.notInclude(leftByKill, Path.relative(dir, stalledPart()!).slice(0, -".part".length))
        const doneBeforeKill = finals().length
        assert.isBelow(doneBeforeKill, 6)

        // With the object store unreachable the export stops, says how to finish, and leaves no temp file behind.
        const down = yield* runCliExit(["admin", "artifacts", "export", "--org", seeded.a.orgId, "--to", dir], s3Env("http://127.0.0.1:9"))
        assert.strictEqual(down.code, 1)
        assert.include(down.stderr, "artifact export stopped (run again to resume)")
        assert.deepStrictEqual(filesUnder(dir).filter((file) => file.endsWith(".part")), [])
        assert.strictEqual(finals().length, doneBeforeKill)

        // The rerun resumes: what was in place is verified, not downloaded again; the .part files are gone.
        const rerun = yield* runCliExit(["admin", "artifacts", "export", "--org", seeded.a.orgId, "--to", dir], s3Env(s3.endpoint))
        assert.strictEqual(rerun.code, 1, rerun.stdout + rerun.stderr)
        const summary = json(rerun.stdout)
        assert.deepInclude(summary, {
          orgId: seeded.a.orgId,
          artifacts: 8,
          alreadyExported: doneBeforeKill,
          exported: 6 - doneBeforeKill,
          failed: 2,
          bytes: seeded.good.reduce((sum, id) => sum + content.get(id)!.byteLength, 0)
        })
        assert.sameDeepMembers(
          summary.problems.map((problem: { id: string; problem: string }) => [problem.id, problem.problem]),
          [[seeded.corrupted, "sha256_mismatch"], [seeded.missing, "missing_object"]]
        )
        assert.include(rerun.stderr, `${seeded.corrupted} (sha256_mismatch)`)
        assert.include(rerun.stderr, `${seeded.missing} (missing_object)`)
        assert.deepInclude(summary, { orphans: 1, orphanObjects: [{ key: seeded.orphan, sizeBytes: 15 }] })

        // Exactly the good artifacts, byte for byte, listed in the manifest; nothing of org B, no temp file.
        const session = seeded.a.sessionId
        assert.deepStrictEqual(filesUnder(dir), [
          "export.json",
          ...seeded.good.map((id) => `files/${session}/${id}`).sort(),
          "manifest.jsonl",
          "orphans.jsonl"
        ].sort())
        for (const id of seeded.good) {
          assert.deepStrictEqual(new Uint8Array(Fs.readFileSync(Path.join(dir, "files", session, id))), new Uint8Array(content.get(id)!))
        }
        const manifest = manifestOf(dir)
        assert.sameMembers(manifest.map((entry) => entry.id), seeded.good)
        for (const entry of manifest) {
          assert.deepInclude(entry, { sessionId: session, path: `files/${session}/${entry.id}`, sha256: sha256(content.get(entry.id)!) })
          assert.match(entry.name, /^good-\d\.bin$/)
        }
        const everything = filesUnder(dir).map((file) => file + Fs.readFileSync(Path.join(dir, file), "latin1")).join("\n")
        for (const id of [seeded.b.orgId, seeded.b.sessionId, ...seeded.foreign]) assert.notInclude(everything, id)

        // A rerun verifies what is in place: a file changed on disk is downloaded again; one whose object has gone bad
        // meanwhile is removed, not kept.
        const [spoiled, rotten] = [seeded.good[0]!, seeded.good[1]!]
        Fs.appendFileSync(Path.join(dir, "files", session, spoiled), "x")
        Fs.appendFileSync(Path.join(dir, "files", session, rotten), "x")
        yield* Effect.flatMap(Effect.service(ObjectStore), (objects) =>
          objects.put(`artifacts/${seeded.a.orgId}/${session}/${rotten}`, new Uint8Array(content.get(rotten)!.byteLength))
        ).pipe(Effect.provide(store), Effect.orDie)
        const verified = yield* runCliExit(["admin", "artifacts", "export", "--org", seeded.a.orgId, "--to", dir], s3Env(s3.endpoint))
        assert.strictEqual(verified.code, 1)
        assert.deepInclude(json(verified.stdout), { artifacts: 8, exported: 1, alreadyExported: 4, failed: 3 })
        assert.deepStrictEqual(new Uint8Array(Fs.readFileSync(Path.join(dir, "files", session, spoiled))), new Uint8Array(content.get(spoiled)!))
        assert.isFalse(Fs.existsSync(Path.join(dir, "files", session, rotten)))
        assert.sameMembers(manifestOf(dir).map((entry) => entry.id), seeded.good.filter((id) => id !== rotten))
        yield* Effect.flatMap(Effect.service(ObjectStore), (objects) =>
          objects.put(`artifacts/${seeded.a.orgId}/${session}/${rotten}`, content.get(rotten)!)
        ).pipe(Effect.provide(store), Effect.orDie)

        // --since: only what was created at or after it (the two bad ones are ten days old now), into a new directory.
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql.unsafe(`UPDATE cloud_artifacts SET created_at = now() - interval '10 days' WHERE id = ANY($1::text[])`, [
            [seeded.missing, seeded.corrupted]
          ])
        }).pipe(Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)
        const recent = tempDir("since")
        const since = new Date(Date.now() - 86_400_000).toISOString()
        const sinceRun = json((yield* runCli(
          ["admin", "artifacts", "export", "--org", seeded.a.orgId, "--to", recent, "--since", since],
          s3Env(s3.endpoint)
        )).stdout)
        assert.deepInclude(sinceRun, { since, artifacts: 6, exported: 6, alreadyExported: 0, failed: 0 })
        assert.sameMembers(manifestOf(recent).map((entry) => entry.id), seeded.good)

        // Refusals, each naming the flag: a directory with foreign files, another org's export, a file, bad flags.
        const refused = (args: ReadonlyArray<string>) =>
          runCliExit(["admin", "artifacts", "export", ...args], s3Env(s3.endpoint)).pipe(Effect.map((result) => {
            assert.notStrictEqual(result.code, 0)
            return result.stderr + result.stdout
          }))
        const cluttered = tempDir("foreign")
        Fs.writeFileSync(Path.join(cluttered, "notes.txt"), "mine")
        assert.include(yield* refused(["--org", seeded.a.orgId, "--to", cluttered]), "--to")
        assert.include(yield* refused(["--org", seeded.a.orgId, "--to", cluttered]), "no export.json")
        Fs.writeFileSync(Path.join(dir, "files", session, "stray.txt"), "x")
        assert.include(yield* refused(["--org", seeded.a.orgId, "--to", dir]), `files/${session}/stray.txt`)
        Fs.rmSync(Path.join(dir, "files", session, "stray.txt"))
        assert.include(yield* refused(["--org", seeded.b.orgId, "--to", dir]), "holds an export of another org")
        assert.include(yield* refused(["--org", seeded.a.orgId, "--to", Path.join(cluttered, "notes.txt")]), "is not a directory")
        assert.include(yield* refused(["--org", "org_nope", "--to", tempDir("nope")]), "--org: org org_nope not found")
        assert.include(yield* refused(["--org", seeded.a.orgId, "--to", tempDir("x"), "--since", "yesterday"]), "--since must be")
        assert.deepStrictEqual(filesUnder(dir).filter((file) => !file.startsWith("files/")), ["export.json", "manifest.jsonl", "orphans.jsonl"])

        // Audited in org A's log with counts only (no path, no content); org B's log has no export.
        const audit = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql.unsafe<{ org_id: string; details: unknown }>(
            `SELECT org_id, details FROM cloud_audit_events WHERE action = 'artifacts.exported' ORDER BY id`
          )
        }).pipe(Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)
        assert.deepStrictEqual(audit.map((row) => row.org_id), [seeded.a.orgId, seeded.a.orgId, seeded.a.orgId])
        const details = typeof audit[0]!.details === "string" ? JSON.parse(audit[0]!.details) : audit[0]!.details
        assert.deepStrictEqual(details, {
          since: null,
          artifacts: 8,
          exported: 6 - doneBeforeKill,
          alreadyExported: doneBeforeKill,
          bytes: summary.bytes,
          failed: 2,
          orphans: 1
        })
        assert.notInclude(JSON.stringify(audit), dir)
      }).pipe(Effect.provide(LocalS3Server.layer)),
    { timeout: 240_000 }
  )

  it.live("file store: offboard --artifacts export exports and keeps the artifacts; a rerun on the offboarded org verifies them", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const dataDir = tempDir("data")
      const env = { OPEN_COWORK_DATABASE_URL: url, OPEN_COWORK_DATA_DIR: dataDir }
      yield* runCli(["migrate"], env)
      const store = FileObjectStore.layer(Path.join(dataDir, "objects")).pipe(Layer.provide(Metrics.layerTest("all")), Layer.orDie)
      const seeded = yield* Effect.gen(function*() {
        const org = yield* newOrgWithSession("leaving")
        const ids: Array<string> = []
        for (let i = 0; i < 2; i++) ids.push((yield* upload(org, `report-${i}.pdf`, Crypto.randomBytes(120_000))).id)
        return { ...org, ids }
      }).pipe(Effect.provide(seeding(url, store)))
      const cli = (...args: ReadonlyArray<string>) => runCli(["admin", ...args], env)

      const needsTo = yield* Effect.flip(cli("org", "offboard", "--artifacts", "export", seeded.orgId))
      assert.include(needsTo.message, "--artifacts export needs --to DIR")
      const toAlone = yield* Effect.flip(cli("org", "offboard", "--to", tempDir("unused"), seeded.orgId))
      assert.include(toAlone.message, "--to is only used with --artifacts export")

      // An unusable directory is refused before the org is offboarded (the audit log below has one offboarding).
      const cluttered = tempDir("cluttered")
      Fs.writeFileSync(Path.join(cluttered, "notes.txt"), "mine")
      const refused = yield* Effect.flip(cli("org", "offboard", "--artifacts", "export", "--to", cluttered, seeded.orgId))
      assert.include(refused.message, `--to ${cluttered}: is not empty and holds no export.json`)

      const dir = tempDir("offboard")
      const report = json((yield* cli("org", "offboard", "--artifacts", "export", "--to", dir, seeded.orgId)).stdout)
      assert.deepInclude(report.artifacts, { policy: "export", deleted: 0, remaining: 2 })
      assert.deepInclude(report.artifacts.exported, { artifacts: 2, exported: 2, failed: 0, dir })
      assert.sameMembers(manifestOf(dir).map((entry) => entry.id), seeded.ids)

      // The org is offboarded; its artifacts can still be exported (here: verified in place, nothing downloaded).
      const again = json((yield* cli("artifacts", "export", "--org", seeded.orgId, "--to", dir)).stdout)
      assert.deepInclude(again, { artifacts: 2, exported: 0, alreadyExported: 2, failed: 0 })

      const actions = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return (yield* sql.unsafe<{ action: string }>(`SELECT action FROM cloud_audit_events WHERE org_id = $1 ORDER BY id`, [
          seeded.orgId
        ])).map((row) => row.action)
      }).pipe(Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)
      assert.deepStrictEqual(actions, ["org.offboarded", "artifacts.exported", "artifacts.exported"])
    }), { timeout: 120_000 })
})
