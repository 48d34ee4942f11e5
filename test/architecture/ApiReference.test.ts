import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import {
  DOC_PATH,
  prose,
  renderRouteTable,
  routeRows,
  SHARED_CONTRACT_EVENT_TYPES,
  SHARED_CONTRACT_ROUTES,
  sessionEventTypes,
  TABLE_END,
  TABLE_START,
  withTable
} from "./ApiReference.ts"

const root = Path.resolve(import.meta.dirname, "../..")
const doc = Fs.readFileSync(Path.join(root, DOC_PATH), "utf8")

/** Routes and event types the doc's prose names in backticks (`POST /api/x/:id` / `command.cancelled`). */
const named = (text: string): Set<string> => new Set([...text.matchAll(/`([^`]+)`/g)].map((match) => match[1]!.replace(/\?.*$/, "")))

/** What the doc's prose misses: routes outside the contract and event types outside it that it does not name. */
const undescribed = (text: string, routes: ReadonlyArray<{ readonly route: string; readonly contract: boolean }>, events: ReadonlyArray<string>) => {
  const names = named(text)
  return [
    ...routes.filter((row) => !row.contract && !names.has(row.route)).map((row) => row.route),
    ...events.filter((type) => !SHARED_CONTRACT_EVENT_TYPES.has(type) && !names.has(type))
  ]
}

describe(`${DOC_PATH}`, () => {
  it("has the route table the Api renders today (run `npm run docs:api` after changing a route)", () => {
    assert.strictEqual(doc, withTable(doc, renderRouteTable()))
  })

  it("describes every route and session event type the shared contract does not list", () => {
    assert.deepStrictEqual(undescribed(prose(doc), routeRows(), sessionEventTypes()), [])
  })

  it("lists only routes of the contract that the Api still serves", () => {
    const served = new Set(routeRows().map((row) => row.route))
    assert.deepStrictEqual([...SHARED_CONTRACT_ROUTES].filter((route) => !served.has(route)), [])
  })

  it("fails on a stale table, an undescribed route or event type, and a doc without its table", () => {
    const rows = routeRows()
    const stale = withTable(doc, renderRouteTable(rows.slice(1)))
    assert.notStrictEqual(withTable(stale, renderRouteTable()), stale)
    const routes = [
      { route: "GET /api/sessions", contract: true },
      { route: "POST /api/sessions/:id/fork", contract: false },
      { route: "POST /api/sessions/:id/merge", contract: false }
    ]
    const events = ["session.created", "session.forked", "session.merged"]
    assert.deepStrictEqual(undescribed("`POST /api/sessions/:id/fork?x=1` appends `session.forked`", routes, events), [
      "POST /api/sessions/:id/merge",
      "session.merged"
    ])
    assert.throws(() => withTable("# no table", renderRouteTable()), TABLE_START)
    assert.isTrue(doc.includes(TABLE_END))
  })
})
