import { type Artifact, decodeArtifactCursor, encodeArtifactCursor, NotFound } from "@cowork/domain"
import { Clock, Effect } from "effect"
import { deleteStrayArtifactObjects, orgArtifactPrefix, storeArtifactBytes } from "./ArtifactRules.ts"
import type { Artifacts, NewArtifact } from "./Artifacts.ts"
import type { MemoryArtifact, MemoryTables } from "./MemoryDatabase.ts"
import { appendToLog } from "./MemoryLog.ts"
import { quotaExceeded } from "./QuotaRules.ts"
import type { ObjectStore } from "./ObjectStore.ts"

const DAY_MS = 86_400_000

const artifactOf = (row: MemoryArtifact): Artifact => ({
  id: row.id,
  sessionId: row.sessionId,
  name: row.name,
  contentType: row.contentType,
  sizeBytes: row.sizeBytes,
  sha256: row.sha256,
  createdAt: new Date(row.createdAt).toISOString()
})

/** The cursor's time as Postgres writes it: UTC with microseconds, no zone. */
const cursorTime = (ms: number) => `${new Date(ms).toISOString().slice(0, 23)}000`

/** Newest first: `(createdAt DESC, id DESC)`. */
const newest = (a: MemoryArtifact, b: MemoryArtifact) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

/** The memory twin of `PgArtifacts`: bytes in the given `ObjectStore`, metadata in the memory tables. */
export const makeArtifactsMemory = (db: MemoryTables, store: ObjectStore["Service"]): Artifacts["Service"] => {
  const sessionInOrg = (orgId: string, sessionId: string) =>
    db.sessions.get(sessionId)?.orgId === orgId
      ? Effect.void
      : Effect.fail(new NotFound({ message: `no such session: ${sessionId}` }))
  /** Deletes the matching artifacts, objects first (as the Pg layer does), per org. */
  const deleteMatching = (matches: (row: MemoryArtifact) => boolean) =>
    Effect.gen(function*() {
      const byOrg = new Map<string, { orgId: string; artifacts: number; bytes: number }>()
      for (const row of [...db.artifacts.values()].filter(matches)) {
        yield* store.delete(row.objectKey)
        db.artifacts.delete(row.id)
        const org = byOrg.get(row.orgId) ?? { orgId: row.orgId, artifacts: 0, bytes: 0 }
        org.artifacts++
        org.bytes += row.sizeBytes
        byOrg.set(row.orgId, org)
      }
      return [...byOrg.values()]
    })
  // Uploaded bytes per org per UTC day (the Pg layer keeps the same windows in cloud_quota_windows).
  const bytesByDay = new Map<string, number>()

  return {
    create: <E>(input: NewArtifact<E>) =>
      Effect.gen(function*() {
        yield* sessionInOrg(input.orgId, input.sessionId)
        const { id, key, sha256, size } = yield* storeArtifactBytes(store, input)
        const now = yield* Clock.currentTimeMillis
        if (input.bytesPerDay !== undefined) {
          const dayStart = Math.floor(now / DAY_MS) * DAY_MS
          const windowKey = `${input.orgId}\u0000${dayStart}`
          const used = bytesByDay.get(windowKey) ?? 0
          if (used + size > input.bytesPerDay) {
            yield* store.delete(key).pipe(Effect.ignore)
            return yield* quotaExceeded("artifact_bytes_per_day", input.bytesPerDay, dayStart + DAY_MS - now)
          }
          bytesByDay.set(windowKey, used + size)
        }
        const row: MemoryArtifact = {
          id,
          orgId: input.orgId,
          sessionId: input.sessionId,
          name: input.name,
          contentType: input.contentType,
          sizeBytes: size,
          sha256: sha256,
          objectKey: key,
          createdBy: input.createdBy,
          createdAt: now
        }
        db.artifacts.set(id, row)
        appendToLog(db, input.sessionId, [{
          type: "artifact.created",
          payload: { artifactId: id, name: row.name, contentType: row.contentType, sizeBytes: row.sizeBytes, sha256: row.sha256 }
        }], now)
        return artifactOf(row)
      }),
    open: (orgId, sessionId, artifactId) =>
      Effect.gen(function*() {
        const row = db.artifacts.get(artifactId)
        if (row === undefined || row.orgId !== orgId || row.sessionId !== sessionId) {
          return yield* new NotFound({ message: `no such artifact: ${artifactId}` })
        }
        const body = yield* store.get(row.objectKey).pipe(
          Effect.catchTag("ObjectNotFound", () => Effect.fail(new NotFound({ message: `artifact ${artifactId} has no stored bytes` })))
        )
        return { artifact: artifactOf(row), body }
      }),
    list: (orgId, options) =>
      Effect.gen(function*() {
        if (options.sessionId !== undefined) yield* sessionInOrg(orgId, options.sessionId)
        const all = [...db.artifacts.values()]
          .filter((row) => row.orgId === orgId && (options.sessionId === undefined || row.sessionId === options.sessionId))
          .sort(newest)
        const after = options.cursor === undefined ? undefined : decodeArtifactCursor(options.cursor)
        const rest = after === undefined
          ? all
          : all.filter((row) => {
            const time = cursorTime(row.createdAt)
            return time < after[0] || (time === after[0] && row.id < after[1])
          })
        const page = rest.slice(0, options.limit)
        return {
          artifacts: page.map(artifactOf),
          nextCursor: rest.length > options.limit ? encodeArtifactCursor(cursorTime(page.at(-1)!.createdAt), page.at(-1)!.id) : null
        }
      }),
    deleteOrg: (orgId) =>
      Effect.gen(function*() {
        const deleted = (yield* deleteMatching((row) => row.orgId === orgId))[0]
        return { artifacts: deleted?.artifacts ?? 0, bytes: deleted?.bytes ?? 0, strayObjects: yield* deleteStrayArtifactObjects(store, orgId) }
      }),
    deleteOlderThan: (olderThanMs, orgId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        deleteMatching((row) => row.createdAt < now - olderThanMs && (orgId === undefined || row.orgId === orgId))),
    totalEstimate: (orgId, sessionId) =>
      Effect.sync(() =>
        [...db.artifacts.values()].filter((row) => row.orgId === orgId && (sessionId === undefined || row.sessionId === sessionId)).length
      ),
    countOrg: (orgId) => Effect.sync(() => [...db.artifacts.values()].filter((row) => row.orgId === orgId).length),
    orphanObjects: (orgId) =>
      Effect.map(store.list(orgArtifactPrefix(orgId)), (objects) => {
        const named = new Set([...db.artifacts.values()].filter((row) => row.orgId === orgId).map((row) => row.objectKey))
        return objects.filter((object) => !named.has(object.key))
      })
  }
}
