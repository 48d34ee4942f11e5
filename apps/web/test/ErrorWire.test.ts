import {
  Api,
  ApiError,
  ArtifactTooLarge,
  Authentication,
  CurrentCaller,
  OperatorAuthentication,
  BadRequest,
  ClaimLost,
  Conflict,
  CurrentPrincipal,
  Forbidden,
  IllegalTransition,
  InvalidObjectKey,
  NotFound,
  NotReady,
  ObjectStoreUnavailable,
  PayloadTooLarge,
  RateLimited,
  SignatureRefused,
  Unauthorized,
  Unavailable,
  UnsupportedMediaType
} from "@cowork/domain"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter, HttpServerRequest } from "effect/http"
import { HttpApiBuilder, HttpApiClient, HttpApiEndpoint } from "effect/http-api"

/**
 * Walks every declared error of every endpoint in the API definition: a server whose every handler (and the auth
 * middleware) fails with the sample error the request names answers with the error's own status and the
 * `{"error": {"code", "message", "details"?}}` body; the generated client decodes it back into the domain error.
 */

const SECRET = "occ_AAAAAAAAAAAA_cccccccccccccccccccccccccccccccc"

/** One instance of every domain error the API may put on the wire. */
const samples: ReadonlyArray<unknown> = [
  new BadRequest({ message: "invalid query field `cursor`", field: "cursor" }),
  new Unauthorized({ message: "missing or invalid bearer token", reason: "expired_token" }),
  new Forbidden({ message: "the token lacks the scope this route requires", requiredScopes: ["operator"] }),
  new SignatureRefused({ message: "the webhook signature does not match" }),
  new NotFound({ message: "session not found" }),
  new Conflict({ message: "idempotency key reused", details: { idempotencyKey: "k1" } }),
  new IllegalTransition({ workerId: "w1", action: "activate", from: "retired", to: "active" }),
  new PayloadTooLarge({ message: "prompt text too long", details: { field: "text", maxLength: 10 } }),
  new ArtifactTooLarge({ limitBytes: 1024 }),
  new UnsupportedMediaType({ contentType: "text/x-evil", allowed: ["text/plain"] }),
  new RateLimited({ message: "at the stream cap", retryAfterMs: 5_000, details: { limit: 2 } }),
  new Unavailable({ message: "draining", retryAfterSeconds: 2 }),
  new ObjectStoreUnavailable({ operation: "put", message: `PUT https://AKIAEXAMPLE:${SECRET}@s3.internal/bucket failed` }),
  new InvalidObjectKey({ key: "orgs/o1/../secret", reason: "dot segment" }),
  new ClaimLost({ kind: "delivery", id: "dlv_1", reason: "expired" }),
  new NotReady({ ok: false, role: "web", profileName: "default", checks: [{ name: "control_plane", status: "error", detail: "down" }] })
]

const statusOf = (sample: unknown): number => {
  const ctor = (sample as { constructor: { ast: { annotations?: { httpApiStatus?: unknown } } } }).constructor
  return ctor.ast.annotations?.httpApiStatus as number
}

const sampleHeader = "x-test-fail-with"
const failWithRequested = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const index = request.headers[sampleHeader]
  return index === undefined ? undefined : samples[Number(index)]
})

/** Every handler of every group fails with the requested sample. */
const failingGroups = Object.values(Api.groups).map((group) =>
  HttpApiBuilder.group(Api, group.identifier as never, (handlers: any) => {
    let all = handlers
    for (const name of Object.keys(group.endpoints)) {
      all = all.handleRaw(name, () => Effect.flatMap(failWithRequested, (sample) => Effect.fail(sample)))
    }
    return Effect.succeed(all)
  }) as unknown as Layer.Layer<never>
)

/** Authentication fails with the requested sample when it is one of the middleware's errors, else lets the call in. */
const authMiddleware = Layer.mergeAll(
  Layer.succeed(Authentication, Authentication.of({
    bearer: (httpEffect) =>
      Effect.gen(function*() {
        const sample = yield* failWithRequested
        if (sample instanceof Unauthorized || sample instanceof Forbidden) return yield* Effect.fail(sample)
        return yield* Effect.provideService(httpEffect, CurrentPrincipal, { kind: "org", orgId: "org", tokenId: "tok", scopes: ["admin"] })
      })
  })),
  Layer.succeed(OperatorAuthentication, OperatorAuthentication.of({
    bearer: (httpEffect) =>
      Effect.gen(function*() {
        const sample = yield* failWithRequested
        if (sample instanceof Unauthorized || sample instanceof Forbidden) return yield* Effect.fail(sample)
        return yield* Effect.provideService(httpEffect, CurrentCaller, { kind: "platform", tokenId: "tok", scopes: ["operator"] })
      })
  }))
)

const server = HttpRouter.serve(
  // The group layers are built generically above, so their service types are erased here.
  (HttpApiBuilder.layer(Api) as unknown as Layer.Layer<never, never, Authentication | OperatorAuthentication>).pipe(
    Layer.provide(failingGroups as [Layer.Layer<never>]),
    Layer.provide(authMiddleware)
  ),
  { disableLogger: true }
).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

const endpoints = Object.values(Api.groups).flatMap((group) =>
  Object.values(group.endpoints).map((endpoint) => ({ group: group.identifier, endpoint: endpoint as HttpApiEndpoint.Top }))
)

/** The endpoint's own errors and its middlewares'. */
const declaredErrors = (endpoint: HttpApiEndpoint.Top): ReadonlyArray<Schema.Top> => [
  ...endpoint.error,
  ...[...endpoint.middlewares].flatMap((middleware) => [...(middleware as unknown as { error: Iterable<Schema.Top> }).error])
]

it.layer(server)("error wire", (it) => {
  it.effect("every declared error of every endpoint answers with its status and the error body", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      let checked = 0
      for (const { endpoint } of endpoints) {
        const path = endpoint.path.replace(/:([A-Za-z]+)/g, "x")
        for (const schema of declaredErrors(endpoint)) {
          const isDeclared = Schema.is(Schema.toType(schema))
          const matching = samples.map((sample, index) => ({ sample, index })).filter(({ sample }) => isDeclared(sample))
          assert.isAbove(matching.length, 0, `${endpoint.method} ${endpoint.path}: a declared error has no sample in this test`)
          for (const { sample, index } of matching) {
            const label = `${endpoint.method} ${endpoint.path} ${(sample as { _tag?: string })._tag ?? "NotReady"}`
            const response = yield* client.execute(
              HttpClientRequest.make(endpoint.method as "GET")(path).pipe(
                HttpClientRequest.setHeaders({ authorization: "Bearer t", [sampleHeader]: String(index) })
              )
            )
            const status = statusOf(sample)
            assert.strictEqual(response.status, status, label)
            const body = (yield* response.json) as any
            checked++
            if (sample instanceof NotReady) {
              // `/readyz` answers 503 with the readiness report itself (the health contract), not an error envelope.
              assert.deepStrictEqual(body.checks, sample.checks, label)
              continue
            }
            assert.strictEqual(body.error.code, ApiError.codeForStatus(status), label)
            assert.isString(body.error.message, label)
            assert.isNotEmpty(body.error.message, label)
            if (body.error.details !== undefined) assert.isObject(body.error.details, label)
            assert.deepStrictEqual(Object.keys(body.error).filter((key) => !["code", "message", "details"].includes(key)), [], label)
            const extra = Object.keys(body).filter((key) => key !== "error")
            if (sample instanceof RateLimited) {
              assert.deepStrictEqual(extra, ["retryAfterMs"], label)
              assert.strictEqual(body.retryAfterMs, 5_000, label)
              assert.strictEqual(response.headers["retry-after"], "5", label)
            } else {
              assert.deepStrictEqual(extra, [], label)
            }
            if (sample instanceof Unavailable) assert.strictEqual(response.headers["retry-after"], "2", label)
            assert.notInclude(JSON.stringify(body), SECRET, `${label}: leaks a secret`)
            assert.notInclude(JSON.stringify(body), "expired_token", `${label}: reveals why the credential was refused`)
            assert.notInclude(JSON.stringify(body), "../secret", `${label}: echoes an internal object key`)
          }
        }
      }
      assert.isAbove(checked, endpoints.length, "every endpoint declares at least the auth errors or its own")
    }))

  it.effect("the generated client decodes each error body back into the domain error", () =>
    Effect.gen(function*() {
      const withoutPayload = endpoints.filter(({ endpoint }) => endpoint.payload.size === 0)
      for (const [index, sample] of samples.entries()) {
        const target = withoutPayload.find(({ endpoint }) =>
          declaredErrors(endpoint).some((schema) => Schema.is(Schema.toType(schema))(sample))
        )
        if (target === undefined) continue
        const client: any = yield* HttpApiClient.make(Api, {
          transformClient: HttpClient.mapRequest(HttpClientRequest.setHeader(sampleHeader, String(index)))
        })
        const method = target.group === "health" ? client[target.endpoint.identifier] : client[target.group][target.endpoint.identifier]
        const failure = yield* Effect.flip(method({ params: { id: "x", aid: "x", cid: "x" }, query: {} }) as Effect.Effect<unknown, unknown>)
        const label = `${target.endpoint.method} ${target.endpoint.path} ${String(failure)}`
        assert.instanceOf(failure, (sample as object).constructor as new(...args: Array<any>) => unknown, label)
        if (sample instanceof RateLimited) assert.strictEqual((failure as RateLimited).retryAfterMs, 5_000)
        if (sample instanceof IllegalTransition) assert.strictEqual((failure as IllegalTransition).from, "retired")
        if (sample instanceof Unauthorized) assert.strictEqual((failure as Unauthorized).reason, undefined)
      }
    }))
})
