import { type Artifact, decodeArtifactCursor, encodeArtifactCursor, NotFound } from "@cowork/domain"
import {
  ARTIFACT_DELETE_BATCH,
  Artifacts,
  deleteStrayArtifactObjects,
  type NewArtifact,
  ObjectStore,
  orgArtifactPrefix,
  storeArtifactBytes
} from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { countEstimate } from "./CountEstimate.ts"
import { admitInWindow } from "./QuotaWindows.ts"
import { appendEvents } from "./AppendEvents.ts"

/** Object keys whose rows are looked up per statement when looking for orphans. */
const ORPHAN_CHECK_BATCH = 1_000

interface ArtifactRow {
  id: string
  session_id: string
  name: string
  content_type: string
  size_bytes: number
  sha256: string
  object_key: string
  created_at: Date
}

const artifactOf = (row: ArtifactRow): Artifact => ({
  id: row.id,
  sessionId: row.session_id,
  name: row.name,
  contentType: row.content_type,
  sizeBytes: Number(row.size_bytes),
  sha256: row.sha256,
  createdAt: new Date(row.created_at).toISOString()
})

/** Keyset order: `(created_at DESC, id DESC)`; the cursor carries the last row's time as µs-exact UTC text. */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const store = yield* ObjectStore

  const sessionInOrg = (orgId: string, sessionId: string) =>
    Effect.gen(function*() {
      const rows = yield* sql.unsafe<{ id: string }>(`SELECT id FROM cloud_sessions WHERE id = $1 AND org_id = $2`, [sessionId, orgId])
      if (rows.length === 0) return yield* new NotFound({ message: `no such session: ${sessionId}` })
    }).pipe(Effect.catchTag("SqlError", Effect.die))

  const create = <E>(input: NewArtifact<E>) =>
    Effect.gen(function*() {
      yield* sessionInOrg(input.orgId, input.sessionId)
      const { id, key, sha256, size } = yield* storeArtifactBytes(store, input)
      const row = yield* sql.withTransaction(Effect.gen(function*() {
        if (input.bytesPerDay !== undefined) yield* admitInWindow(sql, input.orgId, "artifact_bytes_per_day", size, input.bytesPerDay)
        const rows = yield* sql.unsafe<ArtifactRow>(
          `INSERT INTO cloud_artifacts (id, org_id, session_id, name, content_type, size_bytes, sha256, object_key, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
          [id, input.orgId, input.sessionId, input.name, input.contentType, size, sha256, key, input.createdBy]
        )
        yield* appendEvents(input.sessionId, [{
          type: "artifact.created",
          payload: { artifactId: id, name: input.name, contentType: input.contentType, sizeBytes: size, sha256 }
        }], undefined).pipe(Effect.provideService(SqlClient.SqlClient, sql))
        return rows[0]!
      })).pipe(
        Effect.tapError(() => store.delete(key).pipe(Effect.ignore)),
        Effect.catchTag("SqlError", Effect.die)
      )
      return artifactOf(row)
    }).pipe(Effect.withSpan("Artifacts.create"))

  const open = Effect.fn("Artifacts.open")(function*(orgId: string, sessionId: string, artifactId: string) {
    const rows = yield* sql.unsafe<ArtifactRow>(
      `SELECT * FROM cloud_artifacts WHERE id = $1 AND session_id = $2 AND org_id = $3`,
      [artifactId, sessionId, orgId]
    ).pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ message: `no such artifact: ${artifactId}` })
    const body = yield* store.get(row.object_key).pipe(
      Effect.catchTag("ObjectNotFound", () => Effect.fail(new NotFound({ message: `artifact ${artifactId} has no stored bytes` })))
    )
    return { artifact: artifactOf(row), body }
  })

  const list = Effect.fn("Artifacts.list")(function*(
    orgId: string,
    options: { readonly sessionId?: string | undefined; readonly limit: number; readonly cursor?: string | undefined }
  ) {
    if (options.sessionId !== undefined) yield* sessionInOrg(orgId, options.sessionId)
    const after = options.cursor === undefined ? undefined : decodeArtifactCursor(options.cursor)
    const rows = yield* sql.unsafe<ArtifactRow & { created_at_text: string }>(
      `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS created_at_text
       FROM cloud_artifacts
       WHERE org_id = $1 AND ($2::text IS NULL OR session_id = $2)
         AND ($3::text IS NULL OR (created_at, id) < (($3::timestamp AT TIME ZONE 'UTC'), $4))
       ORDER BY created_at DESC, id DESC LIMIT $5`,
      [orgId, options.sessionId ?? null, after?.[0] ?? null, after?.[1] ?? null, options.limit + 1]
    ).pipe(Effect.orDie)
    const page = rows.slice(0, options.limit)
    return {
      artifacts: page.map(artifactOf),
      nextCursor: rows.length > options.limit ? encodeArtifactCursor(page.at(-1)!.created_at_text, page.at(-1)!.id) : null
    }
  })

  /** Deletes the artifacts matching `where` (over `params`) batch by batch; what went, per org. */
  const deleteMatching = (where: string, params: ReadonlyArray<unknown>) =>
    Effect.gen(function*() {
      const byOrg = new Map<string, { orgId: string; artifacts: number; bytes: number }>()
      while (true) {
        const rows = yield* sql.unsafe<{ id: string; org_id: string; object_key: string; size_bytes: number | string }>(
          `SELECT id, org_id, object_key, size_bytes FROM cloud_artifacts WHERE ${where} ORDER BY created_at, id LIMIT $${params.length + 1}`,
          [...params, ARTIFACT_DELETE_BATCH]
        ).pipe(Effect.orDie)
        if (rows.length === 0) break
        // Objects first: a row is never left without the chance to delete its object on a later run.
        yield* Effect.forEach(rows, (row) => store.delete(row.object_key), { concurrency: 8, discard: true })
        yield* sql.unsafe(`DELETE FROM cloud_artifacts WHERE id = ANY($1::text[])`, [rows.map((row) => row.id)]).pipe(Effect.orDie)
        for (const row of rows) {
          const org = byOrg.get(row.org_id) ?? { orgId: row.org_id, artifacts: 0, bytes: 0 }
          org.artifacts++
          org.bytes += Number(row.size_bytes)
          byOrg.set(row.org_id, org)
        }
      }
      return [...byOrg.values()]
    })

  const deleteOrg = Effect.fn("Artifacts.deleteOrg")(function*(orgId: string) {
    const deleted = (yield* deleteMatching(`org_id = $1`, [orgId]))[0]
    return { artifacts: deleted?.artifacts ?? 0, bytes: deleted?.bytes ?? 0, strayObjects: yield* deleteStrayArtifactObjects(store, orgId) }
  })

  const deleteOlderThan = Effect.fn("Artifacts.deleteOlderThan")(function*(olderThanMs: number, orgId: string | undefined) {
    return yield* deleteMatching(
      `created_at < now() - $1::float8 * interval '1 millisecond' AND ($2::text IS NULL OR org_id = $2)`,
      [olderThanMs, orgId ?? null]
    )
  })

  const totalEstimate = Effect.fn("Artifacts.totalEstimate")(function*(orgId: string, sessionId?: string | undefined) {
    return yield* countEstimate(
      sql,
      "cloud_artifacts",
      sessionId === undefined ? "org_id = $1" : "org_id = $1 AND session_id = $2",
      sessionId === undefined ? [orgId] : [orgId, sessionId]
    )
  }, Effect.orDie)

  const countOrg = Effect.fn("Artifacts.countOrg")(function*(orgId: string) {
    const rows = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM cloud_artifacts WHERE org_id = $1`, [orgId])
    return Number(rows[0]!.n)
  }, Effect.orDie)

  /** The org's objects, then their keys' rows looked up by id (the key's last part) a batch at a time. */
  const orphanObjects = Effect.fn("Artifacts.orphanObjects")(function*(orgId: string) {
    const objects = yield* store.list(orgArtifactPrefix(orgId))
    const orphans: Array<(typeof objects)[number]> = []
    for (let start = 0; start < objects.length; start += ORPHAN_CHECK_BATCH) {
      const batch = objects.slice(start, start + ORPHAN_CHECK_BATCH)
      const named = yield* sql.unsafe<{ object_key: string }>(
        `SELECT object_key FROM cloud_artifacts WHERE id = ANY($1::text[]) AND org_id = $2`,
        [batch.map((object) => object.key.slice(object.key.lastIndexOf("/") + 1)), orgId]
      ).pipe(Effect.orDie)
      const keys = new Set(named.map((row) => row.object_key))
      for (const object of batch) if (!keys.has(object.key)) orphans.push(object)
    }
    return orphans
  })

  return Artifacts.of({ create, open, list, totalEstimate, deleteOrg, deleteOlderThan, countOrg, orphanObjects })
})

export const layer = Layer.effect(Artifacts, make)
