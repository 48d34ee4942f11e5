import { authorizationTable } from "@cowork/domain"
import { HTTP_ROUTES, routeLabel } from "@cowork/observability"
import { assert, describe, it } from "@effect/vitest"

describe("route catalog", () => {
  it("declares every API route template, so request metrics label each route by name", () => {
    const declared = new Set<string>(HTTP_ROUTES)
    const missing = authorizationTable().map((row) => row.path).filter((path) => !declared.has(path))
    assert.deepStrictEqual(missing, [], "add these templates to HTTP_ROUTES in packages/observability/src/MetricsCatalog.ts")
  })

  it("never turns a raw path into a label", () => {
    assert.strictEqual(routeLabel("/api/sessions/:id"), "/api/sessions/:id")
    assert.strictEqual(routeLabel("/api/sessions/ses_123"), "unmatched")
    assert.strictEqual(routeLabel(undefined), "unmatched")
  })
})
