import {
  Buckets,
  isConfiguredLabel,
  HTTP_ROUTES,
  type HttpRoute,
  lookupMetric,
  metricNames,
  Metrics,
  MetricsCatalog,
  redact,
  routeLabel
} from "@cowork/observability"
import { StaleOwnerOperation } from "@cowork/domain"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"

const expectDefect = <A, E>(effect: Effect.Effect<A, E, Metrics>, fragment: string) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(effect)
    assert.isTrue(Exit.isFailure(exit), "expected the call to die")
    if (Exit.isFailure(exit)) {
      assert.isTrue(Cause.hasDies(exit.cause), "a contract violation is a defect, not a typed error")
      assert.include(Cause.pretty(exit.cause), fragment)
    }
  })

describe("MetricsCatalog", () => {
  it("names every metric by the convention operators and the runbook rely on", () => {
    for (const name of metricNames()) {
      const spec = lookupMetric(name)!
      assert.match(name, /^open_cowork_(cloud|gateway)_[a-z0-9_]+$/)
      if (spec.type === "counter") assert.match(name, /_total$/, `${name} is a counter`)
      if (spec.type === "histogram") {
        assert.match(name, /_ms$/, `${name}: durations are histograms in milliseconds`)
        const buckets = spec.buckets
        assert.isAbove(buckets.length, 4)
        assert.deepStrictEqual([...buckets].sort((a, b) => a - b), [...buckets], `${name} buckets ascend`)
      }
      assert.notProperty(spec.labels, "role", "role is common to every metric and set by the registry")
    }
  })

  it("declares only bounded label values that carry neither ids nor secrets", () => {
    for (const name of metricNames()) {
      for (const [label, values] of Object.entries(lookupMetric(name)!.labels)) {
        if (isConfiguredLabel(values)) {
          assert.isAtMost(values.maxValues, 80, `${name}.${label} is bounded`)
          assert.isFalse(values.pattern.test("ses_8f3a91") || values.pattern.test("occ_abc_def") || values.pattern.test("a b"), `${name}.${label}: no ids or spaces`)
          continue
        }
        assert.isAtLeast(values.length, 1, `${name}.${label}`)
        // A closed list (the route templates are the largest: one per API route), never an open set such as ids.
        assert.isAtMost(values.length, 150, `${name}.${label} is bounded`)
        for (const value of values) {
          assert.strictEqual(redact(value), value, `${name}.${label}="${value}" would be redacted`)
          assert.notMatch(value, /(ses|cmd|wrk|org|tok)_[A-Za-z0-9]/, "no ids in label values")
        }
      }
    }
    for (const route of HTTP_ROUTES) assert.match(route, /^(unmatched|\/[a-z0-9/:_.-]*)$/)
  })

  it("includes every metric the issue and the runbook name", () => {
    const required = [
      "open_cowork_cloud_http_requests_total", "open_cowork_cloud_http_request_duration_ms",
      "open_cowork_cloud_sse_connections", "open_cowork_cloud_command_queue_depth_estimate",
      "open_cowork_cloud_command_oldest_age_ms", "open_cowork_cloud_prompt_enqueue_duration_ms",
      "open_cowork_cloud_session_create_duration_ms", "open_cowork_cloud_runnable_session_claim_duration_ms",
      "open_cowork_cloud_worker_loop_duration_ms", "open_cowork_cloud_worker_lease_claims_total",
      "open_cowork_cloud_worker_lease_renewals_total", "open_cowork_cloud_worker_lease_denials_total",
      "open_cowork_cloud_worker_expired_leases_reaped_total",
      "open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total",
      "open_cowork_cloud_worker_stale_owner_rejections_total", "open_cowork_cloud_worker_commands_processed_total",
      "open_cowork_cloud_worker_heartbeat_age_ms", "open_cowork_cloud_projection_lag_events",
      "open_cowork_cloud_worker_shutdown_drains_total", "open_cowork_cloud_auth_failures_total"
    ]
    for (const name of required) assert.isDefined(lookupMetric(name), name)
    assert.sameMembers(Object.keys(MetricsCatalog.open_cowork_cloud_http_requests_total.labels), ["method", "status", "route"])
    assert.sameMembers(Object.keys(MetricsCatalog.open_cowork_cloud_worker_commands_processed_total.labels), ["status"])
  })

  it("labels stale-owner refusals with the domain's closed operation union, and unmatched routes as such", () => {
    assert.deepStrictEqual(MetricsCatalog.open_cowork_cloud_worker_stale_owner_rejections_total.labels.operation, StaleOwnerOperation.literals)
    assert.strictEqual(routeLabel(undefined), "unmatched")
  })
})

describe("Metrics", () => {
  it.layer(Metrics.layerTest("web"))((it) => {
    it.effect("counts with the declared labels and the process role", () =>
      Effect.gen(function*() {
        const metrics = yield* Metrics
        const labels = { method: "POST", status: "202", route: "/api/sessions/:id/prompt" } as const
        yield* metrics.inc("open_cowork_cloud_http_requests_total", labels)
        yield* metrics.inc("open_cowork_cloud_http_requests_total", labels, 2)
        assert.strictEqual(yield* metrics.read("open_cowork_cloud_http_requests_total", labels), 3)
        const text = yield* metrics.exposition
        assert.include(
          text,
          `open_cowork_cloud_http_requests_total{method="POST",status="202",route="/api/sessions/:id/prompt",role="web"} 3`
        )
        assert.include(text, "# TYPE open_cowork_cloud_worker_loop_duration_ms histogram")
      }))

    it.effect("takes configured provider ids as labels within their pattern and count", () =>
      Effect.gen(function*() {
        const metrics = yield* Metrics
        yield* metrics.inc("open_cowork_gateway_provider_deliveries_sent_total", { provider_id: "tg-main", provider_kind: "telegram" })
        assert.strictEqual(yield* metrics.read("open_cowork_gateway_provider_deliveries_sent_total", { provider_id: "tg-main", provider_kind: "telegram" }), 1)
        yield* expectDefect(
          metrics.inc("open_cowork_gateway_provider_deliveries_sent_total", { provider_id: "ses_8f3a91", provider_kind: "telegram" }),
          `provider_id="ses_8f3a91" does not match`
        )
        for (let i = 1; i < 32; i++) {
          yield* metrics.inc("open_cowork_gateway_provider_incoming_messages_total", { provider_id: `p${i}`, provider_kind: "webhook" })
        }
        yield* metrics.inc("open_cowork_gateway_provider_incoming_messages_total", { provider_id: "p32", provider_kind: "webhook" })
        yield* expectDefect(
          metrics.inc("open_cowork_gateway_provider_incoming_messages_total", { provider_id: "p33", provider_kind: "webhook" }),
          "more than 32 values"
        )
      }))

    it.effect("dies on an undeclared metric, label or value, and never lets a raw path become a route", () =>
      Effect.gen(function*() {
        const metrics = yield* Metrics
        const loose = metrics as unknown as { inc: (name: string, labels?: unknown, by?: number) => Effect.Effect<void> }
        yield* expectDefect(loose.inc("open_cowork_cloud_made_up_total"), "not declared")
        yield* expectDefect(
          metrics.inc("open_cowork_cloud_http_requests_total", {
            method: "GET",
            status: "200",
            route: "/api/sessions/ses_8f3a91/view" as HttpRoute
          }),
          `route="/api/sessions/ses_8f3a91/view" is not one of the declared values`
        )
        yield* expectDefect(
          loose.inc("open_cowork_cloud_worker_commands_processed_total", { status: "acked", session_id: "ses_1" }),
          `undeclared label "session_id"`
        )
        yield* expectDefect(loose.inc("open_cowork_cloud_worker_commands_processed_total", {}), `missing label "status"`)
        yield* expectDefect(loose.inc("open_cowork_cloud_worker_lease_claims_total", { role: "web" }), "role label")
        yield* expectDefect(loose.inc("open_cowork_cloud_worker_lease_claims_total", {}, -1), "cannot decrease")
        yield* expectDefect(loose.inc("open_cowork_cloud_worker_loop_duration_ms"), "is a histogram")
        const text = yield* metrics.exposition
        assert.notInclude(text, "ses_8f3a91")
        assert.notInclude(text, "made_up")
      }))

    it.effect("times an effect with the clock, on success and on failure", () =>
      Effect.gen(function*() {
        const metrics = yield* Metrics
        const slowClaim = Effect.sleep("40 millis").pipe(metrics.time("open_cowork_cloud_runnable_session_claim_duration_ms"))
        const fiber = yield* Effect.forkChild(slowClaim)
        yield* TestClock.adjust("40 millis")
        yield* Fiber.join(fiber)
        const failing = Effect.sleep("3 millis").pipe(
          Effect.andThen(Effect.fail("boom")),
          metrics.time("open_cowork_cloud_runnable_session_claim_duration_ms")
        )
        const failed = yield* Effect.forkChild(Effect.exit(failing))
        yield* TestClock.adjust("3 millis")
        assert.isTrue(Exit.isFailure(yield* Fiber.join(failed)))
        assert.strictEqual(yield* metrics.read("open_cowork_cloud_runnable_session_claim_duration_ms"), 2)
        const text = yield* metrics.exposition
        assert.include(text, `open_cowork_cloud_runnable_session_claim_duration_ms_sum{role="web"} 43`)
        assert.include(text, `open_cowork_cloud_runnable_session_claim_duration_ms_bucket{le="2",role="web"} 0`)
        assert.include(text, `open_cowork_cloud_runnable_session_claim_duration_ms_bucket{le="5",role="web"} 1`)
        assert.include(text, `open_cowork_cloud_runnable_session_claim_duration_ms_bucket{le="50",role="web"} 2`)
        assert.strictEqual(Buckets.claim[0], 1)
      }))

    it.effect("holds a gauge up for exactly as long as its scope is open", () =>
      Effect.gen(function*() {
        const metrics = yield* Metrics
        const stream = { stream: "session" } as const
        yield* Effect.scoped(
          Effect.gen(function*() {
            yield* metrics.hold("open_cowork_cloud_sse_connections", stream)
            yield* metrics.hold("open_cowork_cloud_sse_connections", stream)
            assert.strictEqual(yield* metrics.read("open_cowork_cloud_sse_connections", stream), 2)
          })
        )
        assert.strictEqual(yield* metrics.read("open_cowork_cloud_sse_connections", stream), 0)
        yield* metrics.set("open_cowork_cloud_command_queue_depth_estimate", 17)
        assert.strictEqual(yield* metrics.read("open_cowork_cloud_command_queue_depth_estimate"), 17)
      }))
  })

  it.effect("exports zero samples from start for every known series of counters and histograms (and held gauges)", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const text = yield* metrics.exposition
      for (const operation of MetricsCatalog.open_cowork_cloud_worker_stale_owner_rejections_total.labels.operation) {
        assert.include(text, `open_cowork_cloud_worker_stale_owner_rejections_total{operation="${operation}",role="worker"} 0\n`)
      }
      for (const status of MetricsCatalog.open_cowork_cloud_worker_commands_processed_total.labels.status) {
        assert.include(text, `open_cowork_cloud_worker_commands_processed_total{status="${status}",role="worker"} 0\n`)
      }
      assert.include(text, `open_cowork_cloud_worker_lease_claims_total{role="worker"} 0\n`)
      assert.include(text, `open_cowork_cloud_sse_connections{stream="session",role="worker"} 0\n`)
      assert.include(text, `open_cowork_cloud_sse_connections{stream="workspace",role="worker"} 0\n`)
      assert.include(text, `open_cowork_cloud_object_store_operation_duration_ms_count{role="worker",operation="put",cloud_object_store_kind="s3"} 0\n`)
      assert.include(text, `open_cowork_cloud_prompt_enqueue_duration_ms_bucket{le="+Inf",role="worker"} 0\n`)
      // The HTTP metrics (method x status x route) stay sparse: their series appear with the first request.
      assert.notMatch(text, /^open_cowork_cloud_http_requests_total\{/m)
      // Recording still works on the pre-made series.
      yield* metrics.inc("open_cowork_cloud_worker_stale_owner_rejections_total", { operation: "append" })
      assert.include(yield* metrics.exposition, `open_cowork_cloud_worker_stale_owner_rejections_total{operation="append",role="worker"} 1\n`)
    }).pipe(Effect.provide(Metrics.layerTest("worker"))))

  it.effect("serves default process metrics with the role on the real layer", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const text = yield* metrics.exposition
      assert.match(text, /process_cpu_user_seconds_total\{role="worker"\}/)
      assert.include(text, "# HELP open_cowork_cloud_worker_stale_owner_rejections_total")
      assert.match(metrics.contentType, /^text\/plain/)
    }).pipe(Effect.provide(Metrics.layer("worker"))))
})

/**
 * Compile-time contract: `npm run typecheck` fails if any of these calls starts to type-check.
 * @public (never called: exported so that it is type-checked, not reported as unused)
 */
export const typeLevelContract = (metrics: Metrics["Service"]) => [
  // @ts-expect-error a raw path is not a route template
  metrics.inc("open_cowork_cloud_http_requests_total", { method: "GET", status: "200", route: "/api/sessions/ses_1" }),
  // @ts-expect-error labelled metrics need their labels
  metrics.inc("open_cowork_cloud_worker_commands_processed_total"),
  // @ts-expect-error histograms are observed, not incremented
  metrics.inc("open_cowork_cloud_worker_loop_duration_ms"),
  // @ts-expect-error counters are not set
  metrics.set("open_cowork_cloud_worker_lease_claims_total", 3),
  // @ts-expect-error undeclared metric
  metrics.inc("open_cowork_cloud_unknown_total"),
  metrics.inc("open_cowork_cloud_worker_commands_processed_total", { status: "acked" }),
  metrics.observe("open_cowork_cloud_prompt_enqueue_duration_ms", 12),
  metrics.set("open_cowork_cloud_sse_connections", { stream: "workspace" }, 4)
]
