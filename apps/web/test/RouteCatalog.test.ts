import { authorizationTable } from "@cowork/domain"
import { HTTP_ROUTES, routeLabel, UNMATCHED_ROUTE } from "@cowork/observability"
import { assert, describe, it } from "@effect/vitest"

describe("route catalog", () => {
  it("declares every API route template, so request metrics label each route by name", () => {
    const declared = new Set<string>(HTTP_ROUTES)
    const missing = authorizationTable().map((row) => row.path).filter((path) => !declared.has(path))
    assert.deepStrictEqual(missing, [], "add these templates to HTTP_ROUTES in packages/observability/src/MetricsCatalog.ts")
  })

  it("declares no template that matches no route (only unmatched and the docs routes served beside the API)", () => {
    const served = new Set<string>([...authorizationTable().map((row) => row.path), UNMATCHED_ROUTE, "/openapi.json", "/docs"])
    const stale = HTTP_ROUTES.filter((route) => !served.has(route))
    assert.deepStrictEqual(stale, [], "remove these templates from HTTP_ROUTES: no route serves them")
  })

  it("never turns a raw path into a label", () => {
    assert.strictEqual(routeLabel("/api/sessions/:id"), "/api/sessions/:id")
    assert.strictEqual(routeLabel("/api/sessions/ses_123"), "unmatched")
    assert.strictEqual(routeLabel(undefined), "unmatched")
  })
})
