import * as Resource from "@effect/opentelemetry/Resource"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Option } from "effect"
import type { Role } from "./MetricsCatalog.ts"

const OTLP_ENDPOINT_ENV = "OPEN_COWORK_OTLP_ENDPOINT"

/** Accepts a collector base URL (`http://collector:4318`) or the full traces URL, as OTLP tools do. */
export const tracesUrl = (endpoint: string): string => {
  const trimmed = endpoint.replace(/\/+$/, "")
  return trimmed.endsWith("/v1/traces") ? trimmed : `${trimmed}/v1/traces`
}

/**
 * Routes every Effect span (`Effect.fn`, `Effect.withSpan`, HTTP server spans) to `processor`. The OpenTelemetry SDK
 * and exporter are imported only when a layer that exports is built: without OPEN_COWORK_OTLP_ENDPOINT a role never
 * loads them (a few hundred modules at every start).
 */
const layerProcessor = (role: Role, processor: SpanProcessor): Layer.Layer<Resource.Resource> =>
  Layer.unwrap(
    Effect.promise(() => import("@effect/opentelemetry/NodeSdk")).pipe(
      Effect.map((NodeSdk) =>
        NodeSdk.layer(() => ({
          resource: { serviceName: `open-cowork-cloud-${role}`, attributes: { "cowork.role": role } },
          spanProcessor: processor
        }))
      )
    )
  )

/** OTLP/HTTP export of every span to `url`, batched. */
const layerOtlp = (role: Role, url: string): Layer.Layer<Resource.Resource> =>
  Layer.unwrap(
    Effect.promise(() => Promise.all([import("@opentelemetry/exporter-trace-otlp-http"), import("@opentelemetry/sdk-trace-base")])).pipe(
      Effect.map(([{ OTLPTraceExporter }, { BatchSpanProcessor }]) =>
        layerProcessor(role, new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(url) })))
      )
    )
  )

export const Tracing = {
  /**
   * OTLP/HTTP span export when OPEN_COWORK_OTLP_ENDPOINT is set; otherwise nothing is installed and spans
   * stay in-process (they still give logs their trace ids).
   */
  layer: (role: Role): Layer.Layer<Resource.Resource> =>
    Layer.unwrap(
      Effect.gen(function*() {
        const endpoint = yield* Config.option(Config.String(OTLP_ENDPOINT_ENV)).pipe(Effect.orDie)
        return Option.match(Option.filter(endpoint, (url) => url.trim() !== ""), {
          onNone: () => Resource.layerEmpty,
          onSome: (url) => layerOtlp(role, url)
        })
      })
    ),
  /** Export through a given processor (tests use a SimpleSpanProcessor over an InMemorySpanExporter). */
  layerProcessor
} as const
