import { monitorEventLoopDelay, performance } from "node:perf_hooks"

/** The nearest-rank percentile of `values` (NaN when empty). */
export const percentile = (values: ReadonlyArray<number>, p: number) => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const round = (n: number, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n)

/**
 * The readers' mix, in turn: what the workbench reads — the session list and a title search over the stored threads,
 * the thread views' list, tags and smart-filter counts, a session's view, the workspace, workflows, artifacts and the
 * usage summary.
 */
const READS: ReadonlyArray<(i: number, sessionId: string) => string> = [
  () => "/api/sessions?limit=50",
  (i) => `/api/sessions?limit=20&q=thread%20${i % 100}`,
  (_, sessionId) => `/api/sessions/${sessionId}/view`,
  () => "/api/workspace",
  () => "/api/workflows",
  () => "/api/artifacts?limit=20",
  () => "/api/threads?limit=50",
  () => "/api/threads/tags",
  () => "/api/threads/smart-filters",
  () => "/api/usage/summary"
]

/** The `i`th read of a reader (`sessionId`: the session it views). */
export const readPath = (i: number, sessionId: string): string => READS[i % READS.length]!(i, sessionId)

/** A request's route for the per-route breakdown: ids as `:id`, the query string reduced to its parameter names. */
export const routeOf = (method: string, path: string): string => {
  const [pathname, search] = path.split("?", 2) as [string, string | undefined]
  const names = search === undefined ? [] : [...new URLSearchParams(search).keys()]
  return `${method} ${pathname.replace(/[a-z]+_[0-9a-z]+/g, ":id")}${names.length === 0 ? "" : `?${names.join("&")}`}`
}

/** Latencies per route: `record` each request, `summary` gives count, p50 and p95 per route, slowest p95 first. */
export const routeLatencies = () => {
  const byRoute = new Map<string, Array<number>>()
  return {
    record: (route: string, ms: number) => {
      const list = byRoute.get(route)
      if (list === undefined) byRoute.set(route, [ms])
      else list.push(ms)
    },
    summary: () =>
      [...byRoute.entries()]
        .map(([route, ms]) => ({ route, count: ms.length, p50Ms: round(percentile(ms, 50)), p95Ms: round(percentile(ms, 95)) }))
        .sort((a, b) => b.p95Ms - a.p95Ms)
  }
}

/**
 * The load generator's own saturation: its event-loop delay (a timer's lateness, sampled every 10 ms) and its CPU
 * (user + system) as % of one core from `start` to `stop`. A generator whose loop is late measures its own
 * queueing as request latency.
 */
export const generatorLoad = () => {
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  return {
    stop: () => {
      histogram.disable()
      const cpu = process.cpuUsage(cpu0)
      const wallUs = (performance.now() - t0) * 1000
      return {
        eventLoopDelayP50Ms: round(histogram.percentile(50) / 1e6),
        eventLoopDelayP99Ms: round(histogram.percentile(99) / 1e6),
        eventLoopDelayMaxMs: round(histogram.max / 1e6),
        cpuUserPercent: round((cpu.user / wallUs) * 100),
        cpuSystemPercent: round((cpu.system / wallUs) * 100)
      }
    }
  }
}
