/**
 * `npm run bench:checkpoints`: the worker's checkpoint path alone, in this process, on the embedded defaults (the file
 * object store, the local key-file envelope keys): sessions whose one file grows every turn (the scripted runtime's
 * transcript), a save per turn and a prune (keep 3) every 4th save, as the worker does. CPU (user + system of this
 * process, which includes the file system calls of the thread pool) per save, then the store's leftovers. The figure
 * depends little on the load: compare runs of two commits back to back.
 *
 * Knobs: BENCH_SESSIONS (20), BENCH_SAVES (40 per session).
 */
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { FileObjectStore, make as makeCheckpointStore } from "@cowork/storage"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { envInt, round } from "./stack.ts"

const SESSIONS = envInt("BENCH_SESSIONS", 20)
const SAVES = envInt("BENCH_SAVES", 40)

const main = Effect.gen(function*() {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-bench-checkpoints-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
  const objects = yield* FileObjectStore.make(Path.join(dir, "objects"))
  const checkpoints = makeCheckpointStore(objects, LocalKeyFileSecretAdapter.make(Path.join(dir, "secret.key")))
  const encoder = new TextEncoder()
  const turns = (sessions: number, saves: number, tag: string) =>
    Effect.gen(function*() {
      for (let s = 0; s < sessions; s++) {
        let transcript = ""
        for (let version = 1; version <= saves; version++) {
          transcript += `## turn ${version}\n\necho: benchmark prompt\n\n`
          const files = new Map([["workspace/transcript.md", encoder.encode(transcript)]])
          // As the worker does: the version it replaces is the previous one (its manifest known to this process).
          yield* checkpoints.save("org_bench", `ses_${tag}_${s}`, version, { files }, version - 1)
          if (version % 4 === 1) yield* checkpoints.prune("org_bench", `ses_${tag}_${s}`, 3)
        }
      }
    })
  yield* turns(4, 8, "warm")
  const loadBefore = Os.loadavg().map((n) => round(n, 2)).join(" / ")
  const cpu0 = process.cpuUsage()
  const started = performance.now()
  yield* turns(SESSIONS, SAVES, "measured")
  const cpu = process.cpuUsage(cpu0)
  const seconds = (performance.now() - started) / 1000
  const saves = SESSIONS * SAVES
  const result = {
    saves,
    prunes: SESSIONS * Math.ceil(SAVES / 4),
    cpuMsPerSave: round((cpu.user + cpu.system) / 1000 / saves, 2),
    userMsPerSave: round(cpu.user / 1000 / saves, 2),
    systemMsPerSave: round(cpu.system / 1000 / saves, 2),
    wallMsPerSave: round((seconds * 1000) / saves, 2),
    chunksLeft: (yield* objects.list("checkpoints/org_bench/")).filter((entry) => entry.key.includes("/chunks/")).length,
    loadBefore,
    loadAfter: Os.loadavg().map((n) => round(n, 2)).join(" / ")
  }
  console.log(JSON.stringify(result))
}).pipe(Effect.scoped)

main.pipe(Effect.orDie, NodeRuntime.runMain)
