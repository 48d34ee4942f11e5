import { Clock, Context, Effect, Layer, Schema, type Scope } from "effect"
import * as Prom from "prom-client"
import {
  type CounterName,
  type GaugeName,
  type HistogramName,
  isConfiguredLabel,
  type LabelsOf,
  lookupMetric,
  type MetricName,
  type MetricSpec,
  type MetricType,
  MetricsCatalog,
  ROLE_LABEL,
  type Role,
  ROLES
} from "./MetricsCatalog.ts"

/**
 * A call site recorded a metric the catalog does not declare, with the wrong type, or with a label value
 * outside its allowed set. This is a programming error, so it is raised as a defect.
 */
class MetricContractViolation extends Schema.TaggedError<MetricContractViolation>()("MetricContractViolation", {
  message: Schema.String
}) {}

type Unlabelled<N extends MetricName> = keyof LabelsOf<N> extends never ? true : false

/** Metrics without labels take no label argument (or `{}`); the others require theirs. */
type LabelArgs<N extends MetricName> = Unlabelled<N> extends true ? [labels?: {}] : [labels: LabelsOf<N>]

/** Labels (when the metric has any), then a number. */
type ValueArgs<N extends MetricName, Optional extends boolean> = Unlabelled<N> extends true
  ? Optional extends true ? [value?: number] | [labels: {}, value?: number] : [value: number] | [labels: {}, value: number]
  : Optional extends true ? [labels: LabelsOf<N>, value?: number]
  : [labels: LabelsOf<N>, value: number]

export class Metrics extends Context.Service<Metrics, {
  readonly role: Role
  /** Adds `by` (default 1) to a counter, or to a gauge (a negative `by` lowers a gauge; counters only rise). */
  readonly inc: <N extends CounterName | GaugeName>(name: N, ...args: ValueArgs<N, true>) => Effect.Effect<void>
  readonly set: <N extends GaugeName>(name: N, ...args: ValueArgs<N, false>) => Effect.Effect<void>
  readonly observe: <N extends HistogramName>(name: N, ...args: ValueArgs<N, false>) => Effect.Effect<void>
  /** Records the wall time of `effect` in milliseconds, however it exits. */
  readonly time: <N extends HistogramName>(
    name: N,
    ...args: LabelArgs<N>
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Raises a gauge by one for as long as the surrounding scope is open (an SSE connection, an active run). */
  readonly hold: <N extends GaugeName>(name: N, ...args: LabelArgs<N>) => Effect.Effect<void, never, Scope.Scope>
  /** Current value of a counter or gauge series; for a histogram, its observation count. */
  readonly read: <N extends MetricName>(name: N, ...args: LabelArgs<N>) => Effect.Effect<number>
  /** The whole registry in the Prometheus text format. */
  readonly exposition: Effect.Effect<string>
  readonly contentType: string
}>()("cowork/Metrics") {
  /** The process registry with Node's default process metrics (CPU, memory, event loop, GC). */
  static readonly layer = (role: Role) => Layer.sync(Metrics, () => makeMetrics(role, { processMetrics: true }))

  /** A fresh registry without process metrics, for tests that read exact values. */
  static readonly layerTest = (role: Role = "all") =>
    Layer.sync(Metrics, () => makeMetrics(role, { processMetrics: false }))
}

type PromMetric = Prom.Counter | Prom.Gauge | Prom.Histogram

const violation = (message: string) => Effect.die(new MetricContractViolation({ message }))

/** Distinct values seen per configured label (`metric.label`), to hold each to its declared count. */
type SeenValues = Map<string, Set<string>>

const checkLabels = (name: string, spec: MetricSpec, labels: unknown, seen: SeenValues): string | undefined => {
  const given = (labels ?? {}) as Record<string, unknown>
  if (typeof given !== "object") return `${name}: labels must be an object`
  for (const key of Object.keys(given)) {
    if (key === ROLE_LABEL) return `${name}: the role label is set by the registry, not the call site`
    if (!Object.hasOwn(spec.labels, key)) return `${name}: undeclared label "${key}"`
  }
  for (const [key, allowed] of Object.entries(spec.labels)) {
    const value = given[key]
    if (typeof value !== "string") return `${name}: missing label "${key}"`
    if (isConfiguredLabel(allowed)) {
      if (!allowed.pattern.test(value)) return `${name}: label ${key}="${value}" does not match ${allowed.pattern.source}`
      const values = seen.get(`${name}.${key}`) ?? new Set<string>()
      if (!values.has(value) && values.size >= allowed.maxValues) return `${name}: label ${key} has more than ${allowed.maxValues} values`
      values.add(value)
      seen.set(`${name}.${key}`, values)
      continue
    }
    if (!allowed.includes(value)) return `${name}: label ${key}="${value}" is not one of the declared values`
  }
  return undefined
}

/**
 * A counter or histogram whose declared label values combine into at most this many series exports every one of
 * them as 0 from start, so `rate()` and alerts find a series before the first event. The HTTP metrics (method x
 * status x route) would be thousands of empty series: they appear with the first request instead.
 */
const ZERO_SERIES_LIMIT = 64

/** Every combination of the declared label values (one empty combination for an unlabelled metric). */
const labelCombinations = (labels: MetricSpec["labels"]): Array<Record<string, string>> =>
  Object.entries(labels).reduce<Array<Record<string, string>>>(
    (combinations, [key, values]) =>
      // Configured values are not known here: their series appear when the process records them (or zeroes them).
      isConfiguredLabel(values) ? [] : combinations.flatMap((combination) => values.map((value) => ({ ...combination, [key]: value }))),
    [{}]
  )

const makeMetrics = (role: Role, options: { readonly processMetrics: boolean }): Metrics["Service"] => {
  if (!ROLES.includes(role)) throw new MetricContractViolation({ message: `unknown role "${role}"` })
  const registry = new Prom.Registry()
  registry.setDefaultLabels({ [ROLE_LABEL]: role })
  if (options.processMetrics) Prom.collectDefaultMetrics({ register: registry })

  const instruments = new Map<string, PromMetric>()
  const seen: SeenValues = new Map()
  for (const [name, spec] of Object.entries(MetricsCatalog) as Array<[string, MetricSpec]>) {
    const common = { name, help: spec.help, labelNames: Object.keys(spec.labels), registers: [registry] }
    instruments.set(
      name,
      spec.type === "counter"
        ? new Prom.Counter(common)
        : spec.type === "gauge"
        ? new Prom.Gauge(common)
        : new Prom.Histogram({ ...common, buckets: [...spec.buckets] })
    )
  }

  for (const [name, spec] of Object.entries(MetricsCatalog) as Array<[string, MetricSpec]>) {
    if (spec.type === "gauge" && spec.zeroAtStart !== true) continue
    const series = labelCombinations(spec.labels)
    if (series.length === 0 || series.length > ZERO_SERIES_LIMIT) continue
    const instrument = instruments.get(name)!
    for (const labels of series) {
      if (instrument instanceof Prom.Histogram) instrument.zero(labels)
      else if (instrument instanceof Prom.Gauge) instrument.set(labels, 0)
      else instrument.inc(labels, 0)
    }
  }

  /** Validates a call against the catalog and hands the instrument to `use`; dies on any mismatch. */
  const record = (
    name: string,
    types: ReadonlyArray<MetricType>,
    labels: unknown,
    use: (instrument: PromMetric, labels: Prom.LabelValues<string>) => void
  ): Effect.Effect<void> =>
    Effect.suspend(() => {
      const spec = lookupMetric(name)
      if (spec === undefined) return violation(`metric "${name}" is not declared in the catalog`)
      if (!types.includes(spec.type)) return violation(`${name} is a ${spec.type}; this operation needs ${types.join(" or ")}`)
      const problem = checkLabels(name, spec, labels, seen)
      if (problem !== undefined) return violation(problem)
      use(instruments.get(name)!, (labels ?? {}) as Prom.LabelValues<string>)
      return Effect.void
    })

  const splitArgs = (args: ReadonlyArray<unknown>): [labels: unknown, value: number | undefined] =>
    args.length >= 2
      ? [args[0], args[1] as number | undefined]
      : typeof args[0] === "number" || args[0] === undefined
      ? [undefined, args[0] as number | undefined]
      : [args[0], undefined]

  const inc = (name: string, ...args: ReadonlyArray<unknown>): Effect.Effect<void> => {
    const [labels, by = 1] = splitArgs(args)
    if (!Number.isFinite(by)) return violation(`${name}: increment ${by} is not a finite number`)
    if (by < 0 && lookupMetric(name)?.type === "counter") return violation(`${name}: a counter cannot decrease`)
    return record(name, ["counter", "gauge"], labels, (instrument, values) => (instrument as Prom.Gauge).inc(values, by))
  }

  const set = (name: string, ...args: ReadonlyArray<unknown>): Effect.Effect<void> => {
    const [labels, value] = splitArgs(args)
    if (value === undefined || !Number.isFinite(value)) return violation(`${name}: value ${value} is not a finite number`)
    return record(name, ["gauge"], labels, (instrument, values) => (instrument as Prom.Gauge).set(values, value))
  }

  const observe = (name: string, ...args: ReadonlyArray<unknown>): Effect.Effect<void> => {
    const [labels, value] = splitArgs(args)
    if (value === undefined || !Number.isFinite(value) || value < 0) {
      return violation(`${name}: observation ${value} is not a finite non-negative number`)
    }
    return record(name, ["histogram"], labels, (instrument, values) => (instrument as Prom.Histogram).observe(values, value))
  }

  const time = (name: string, labels?: unknown) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    record(name, ["histogram"], labels, () => {}).pipe(
      Effect.andThen(Clock.currentTimeMillis),
      Effect.flatMap((start) =>
        effect.pipe(
          Effect.onExit(() =>
            Effect.flatMap(Clock.currentTimeMillis, (end) => observe(name, labels ?? {}, Math.max(0, end - start)))
          )
        )
      )
    )

  const hold = (name: string, labels?: unknown) =>
    Effect.acquireRelease(inc(name, labels ?? {}, 1), () => inc(name, labels ?? {}, -1)).pipe(Effect.asVoid)

  const read = (name: string, labels?: unknown): Effect.Effect<number> =>
    record(name, ["counter", "gauge", "histogram"], labels, () => {}).pipe(
      Effect.andThen(Effect.promise(() => instruments.get(name)!.get())),
      Effect.map((snapshot) => {
        const wanted = (labels ?? {}) as Record<string, string>
        const matches = (series: Record<string, string | number>) =>
          Object.entries(wanted).every(([key, value]) => series[key] === value)
        const target = lookupMetric(name)!.type === "histogram" ? `${name}_count` : name
        const value = snapshot.values.find((series) =>
          ((series as { metricName?: string }).metricName ?? name) === target && matches(series.labels as Record<string, string | number>)
        )
        return value?.value ?? 0
      })
    )

  return {
    role,
    inc: inc as Metrics["Service"]["inc"],
    set: set as Metrics["Service"]["set"],
    observe: observe as Metrics["Service"]["observe"],
    time: time as Metrics["Service"]["time"],
    hold: hold as Metrics["Service"]["hold"],
    read: read as Metrics["Service"]["read"],
    exposition: Effect.promise(() => registry.metrics()),
    contentType: registry.contentType
  }
}
