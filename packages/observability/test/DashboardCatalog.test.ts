import { isConfiguredLabel, lookupMetric, metricOfSeries, Metrics, ROLE_LABEL, ROLES, seriesLabels } from "@cowork/observability"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Yaml from "yaml"

const deployDir = Path.resolve(import.meta.dirname, "../../../deploy/observability")

const PROMQL_FUNCTIONS = new Set([
  "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
  "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "resets", "changes",
  "histogram_quantile", "abs", "ceil", "floor", "round", "clamp_min", "clamp_max", "absent", "absent_over_time",
  "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
  "quantile_over_time", "time", "timestamp", "vector", "scalar", "label_replace", "label_join", "sort", "sort_desc"
])
const PROMQL_KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan"])

interface Matcher {
  readonly label: string
  readonly op: string
  readonly value: string
}

/** The metrics, label matchers and grouping labels a PromQL expression refers to. */
const references = (expr: string) => {
  const selectors: Array<{ metric: string | undefined; matchers: Array<Matcher> }> = []
  const groupings: Array<string> = []
  const functions: Array<string> = []
  const metrics: Array<string> = []
  let rest = expr.replace(/([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}/g, (_, metric: string | undefined, body: string) => {
    const matchers = [...body.matchAll(/([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map(([, label, op, value]) => ({
      label: label!,
      op: op!,
      value: value!
    }))
    selectors.push({ metric, matchers })
    return ` ${metric ?? ""} `
  })
  rest = rest.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, __, labels: string) => {
    groupings.push(...labels.split(",").map((label) => label.trim()).filter((label) => label !== ""))
    return " "
  })
  rest = rest.replace(/\[[^\]]*\]/g, " ").replace(/"(?:[^"\\]|\\.)*"/g, " ").replace(/\b\d+(\.\d+)?([smhdwy]|ms)?\b/g, " ")
  for (const match of rest.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const name = match[1]!
    if (match[2] !== undefined) functions.push(name)
    else if (!PROMQL_KEYWORDS.has(name.toLowerCase())) metrics.push(name)
  }
  return { selectors, groupings, functions, metrics }
}

const allowedValues = (metric: string, label: string): ReadonlyArray<string> | undefined => {
  if (label === ROLE_LABEL) return ROLES
  const values = lookupMetric(metricOfSeries(metric) ?? "")?.labels[label]
  return values === undefined || isConfiguredLabel(values) ? undefined : values
}

/** Everything wrong with one expression against the catalog; empty when it only names what the code emits. */
const problems = (where: string, expr: string, templateLabels: ReadonlyArray<string> = []): Array<string> => {
  const found: Array<string> = []
  const refs = references(expr)
  for (const fn of refs.functions) if (!PROMQL_FUNCTIONS.has(fn)) found.push(`${where}: unknown function ${fn}()`)
  for (const metric of refs.metrics) {
    if (metricOfSeries(metric) === undefined) found.push(`${where}: metric ${metric} is not in the catalog`)
  }
  const available = new Set(refs.metrics.flatMap((metric) => seriesLabels(metric)))
  for (const { metric, matchers } of refs.selectors) {
    if (metric === undefined) {
      found.push(`${where}: selector without a metric name`)
      continue
    }
    const declared = seriesLabels(metric)
    for (const { label, op, value } of matchers) {
      if (!declared.includes(label)) {
        found.push(`${where}: ${metric} has no label "${label}"`)
        continue
      }
      const allowed = allowedValues(metric, label)
      if (allowed === undefined || value.includes("$")) continue
      const matches = op === "=" || op === "!="
        ? allowed.includes(value)
        : allowed.some((candidate) => new RegExp(`^(?:${value})$`).test(candidate))
      if (!matches) found.push(`${where}: ${metric}{${label}${op}"${value}"} matches no declared value`)
    }
  }
  for (const label of [...refs.groupings, ...templateLabels]) {
    if (!available.has(label)) found.push(`${where}: label "${label}" is not declared by ${refs.metrics.join(", ")}`)
  }
  return found
}

const templateLabels = (text: string | undefined): Array<string> =>
  [...(text ?? "").matchAll(/\{\{\s*(?:\$labels\.)?([A-Za-z_]\w*)\s*\}\}/g)].map((match) => match[1]!)

interface AlertRule {
  readonly alert: string
  readonly expr: string
  readonly annotations?: Record<string, string>
}

const loadAlerts = (): Array<AlertRule> => {
  const document = Yaml.parse(Fs.readFileSync(Path.join(deployDir, "prometheus-alerts.yml"), "utf8")) as {
    groups: Array<{ rules: Array<AlertRule> }>
  }
  return document.groups.flatMap((group) => group.rules)
}

interface Panel {
  readonly title: string
  readonly type: string
  readonly targets?: Array<{ expr: string; legendFormat?: string }>
  readonly panels?: Array<Panel>
}

const loadDashboard = () =>
  JSON.parse(Fs.readFileSync(Path.join(deployDir, "grafana-dashboard.json"), "utf8")) as {
    panels: Array<Panel>
    templating: { list: Array<{ name: string; type: string; query: unknown }> }
  }

const dashboardTargets = () =>
  loadDashboard().panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title, ...target }))
  )

describe("deploy/observability against the metrics catalog", () => {
  it("the checker catches undeclared metrics, labels and label values", () => {
    assert.isNotEmpty(problems("t", "rate(open_cowork_cloud_made_up_total[5m])"))
    assert.isNotEmpty(problems("t", `sum(open_cowork_cloud_worker_lease_claims_total{session_id="ses_1"})`))
    assert.isNotEmpty(problems("t", `open_cowork_cloud_http_requests_total{status="299"}`))
    assert.isNotEmpty(problems("t", `open_cowork_cloud_http_requests_total{role=~"router"}`))
    assert.isNotEmpty(problems("t", `sum by (worker_id) (open_cowork_cloud_worker_heartbeat_age_ms)`))
    assert.isNotEmpty(problems("t", `sum by (le) (rate(open_cowork_cloud_worker_lease_claims_total[5m]))`))
    assert.isNotEmpty(problems("t", "sum(rate(node_cpu_seconds_total[5m]))"))
    assert.isNotEmpty(problems("t", "sum(open_cowork_cloud_sse_connections)", ["route"]))
    assert.isEmpty(problems(
      "t",
      `histogram_quantile(0.95, sum by (le, route) (rate(open_cowork_cloud_http_request_duration_ms_bucket{role=~"web|all",route!="unmatched"}[5m])))`
    ))
  })

  it("every alert rule names only catalog metrics, labels and values", () => {
    const rules = loadAlerts()
    assert.isAtLeast(rules.length, 7)
    const found = rules.flatMap((rule) =>
      problems(`alert ${rule.alert}`, rule.expr, Object.values(rule.annotations ?? {}).flatMap(templateLabels))
    )
    assert.deepStrictEqual(found, [])
  })

  it("every dashboard query names only catalog metrics, labels and values", () => {
    const targets = dashboardTargets()
    assert.isAtLeast(targets.length, 15)
    const found = targets.flatMap((target) =>
      problems(`panel "${target.panel}"`, target.expr, templateLabels(target.legendFormat))
    )
    assert.deepStrictEqual(found, [])
    const role = loadDashboard().templating.list.find((variable) => variable.name === "role")!
    assert.includeMembers([...ROLES], String(role.query).split(","))
  })

  it("covers each runbook incident with an alert", () => {
    const exprs = loadAlerts().map((rule) => rule.expr).join("\n")
    for (const signal of [
      "open_cowork_cloud_command_oldest_age_ms", // worker backlog
      "open_cowork_cloud_worker_stale_owner_rejections_total", // stale-lease spike
      "open_cowork_cloud_worker_expired_leases_reaped_total",
      "open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total", // reaper drain-cap hits
      "open_cowork_cloud_worker_heartbeat_age_ms", // heartbeat age
      `open_cowork_cloud_http_requests_total{role=~"web|all",status=~"5.."}`, // web 5xx rate
      "open_cowork_cloud_sse_connections", // SSE connection drop
      "open_cowork_cloud_projection_lag_events" // projection lag
    ]) assert.include(exprs, signal)
  })

  it.effect("every metric they name is in a running registry's exposition", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const exposition = yield* metrics.exposition
      const named = new Set(
        [...loadAlerts().map((rule) => rule.expr), ...dashboardTargets().map((target) => target.expr)]
          .flatMap((expr) => references(expr).metrics)
          .map((series) => metricOfSeries(series)!)
      )
      assert.isAtLeast(named.size, 15)
      for (const metric of named) assert.include(exposition, `# TYPE ${metric} `)
    }).pipe(Effect.provide(Metrics.layerTest("web"))))
})
