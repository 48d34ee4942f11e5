import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { DEFAULT_BUILD_DIR, readBuild, renderShell } from "../src/Workbench.ts"
import { baseUrl, layer } from "./support/WebTestServer.ts"

const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const response = yield* Effect.promise(() => fetch(`${url}${path}`, { headers }))
    return { status: response.status, headers: response.headers, text: yield* Effect.promise(() => response.text()) }
  })

const nonceOf = (csp: string) => /script-src 'self' 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1]

describe("the workbench build", () => {
  it("is built (the root `prepare` script runs `npm run build:workbench` in `npm ci`)", () => {
    const build = readBuild(DEFAULT_BUILD_DIR)
    assert.isDefined(build, `no build in ${DEFAULT_BUILD_DIR}: run npm run build:workbench`)
    assert.match(build!.script, /^\/app\/assets\/main-[A-Za-z0-9_-]+\.js$/)
    assert.isAbove(build!.styles.length, 0)
  })

  it("the bootstrap JSON cannot end its script element", () => {
    const html = renderShell({ script: "/app/assets/a.js", styles: [], assets: new Map() }, "n0nce", { note: "</script><script>alert(1)</script>" })
    assert.notInclude(html, "</script><script>alert(1)")
    const json = /<script id="cowork-bootstrap" type="application\/json" nonce="n0nce">(.*?)<\/script>/s.exec(html)?.[1]
    assert.deepStrictEqual(JSON.parse(json!), { note: "</script><script>alert(1)</script>" })
  })
})

it.layer(layer)("the workbench shell served by the web role", (it) => {
  it.effect("GET / is the HTML shell: no-store, a CSP with a fresh nonce per request, public bootstrap config only", () =>
    Effect.gen(function*() {
      const first = yield* get("/")
      assert.strictEqual(first.status, 200)
      assert.match(first.headers.get("content-type") ?? "", /^text\/html/)
      assert.strictEqual(first.headers.get("cache-control"), "no-store")
      const csp = first.headers.get("content-security-policy") ?? ""
      const directives = csp.split(";").map((d) => d.trim())
      for (const expected of ["default-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"]) {
        assert.include(directives, expected, csp)
      }
      assert.notInclude(csp, "unsafe-inline")
      assert.notInclude(csp, "unsafe-eval")
      const nonce = nonceOf(csp)
      assert.isDefined(nonce, csp)
      assert.isAtLeast(nonce!.length, 16)
      // Every script element carries the nonce; none is inline code.
      const scripts = [...first.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
      assert.strictEqual(scripts.length, 2)
      for (const [, attributes] of scripts) assert.include(attributes, `nonce="${nonce}"`)
      const moduleScript = scripts.find(([, attributes]) => attributes!.includes('type="module"'))!
      assert.strictEqual(moduleScript[2], "", "the app is loaded from /app/assets, not inlined")
      assert.match(moduleScript[1]!, /src="\/app\/assets\/main-[A-Za-z0-9_-]+\.js"/)

      const bootstrap = /<script id="cowork-bootstrap" type="application\/json" nonce="[^"]+">([\s\S]*?)<\/script>/.exec(first.text)?.[1]
      assert.isDefined(bootstrap)
      const config = JSON.parse(bootstrap!)
      assert.deepInclude(config, { authMode: "local", tokenLoginUrl: "/auth/token-login", logoutUrl: "/auth/logout", apiBase: "/api", sessionCookie: false })
      assert.notMatch(bootstrap!, /occ_|ocw_|csrf|token"\s*:/i, "no credential in the bootstrap")

      const second = yield* get("/", { cookie: "cowork_session=abc" })
      assert.include(second.text, '"sessionCookie":true', "the page knows a cookie came (not whether it is valid)")
      assert.notStrictEqual(nonceOf(second.headers.get("content-security-policy") ?? ""), nonce, "a fresh nonce per request")
    }))

  it.effect("hashed assets under /app/assets/ are immutable for a year; an unknown one is a JSON 404", () =>
    Effect.gen(function*() {
      const shell = yield* get("/")
      const urls = [...shell.text.matchAll(/(?:src|href)="(\/app\/assets\/[^"]+)"/g)].map((m) => m[1]!)
      assert.isAtLeast(urls.length, 2, "the script and the stylesheet")
      for (const url of urls) {
        const asset = yield* get(url)
        assert.strictEqual(asset.status, 200, url)
        assert.strictEqual(asset.headers.get("cache-control"), "public, max-age=31536000, immutable")
        assert.match(asset.headers.get("content-type") ?? "", url.endsWith(".js") ? /^text\/javascript/ : /^text\/css/)
        assert.strictEqual(asset.headers.get("x-content-type-options"), "nosniff")
        assert.isAbove(asset.text.length, 100)
      }
      const missing = yield* get("/app/assets/main-nothere.js")
      assert.strictEqual(missing.status, 404)
      assert.deepInclude(JSON.parse(missing.text).error, { code: "not_found" })
      const traversal = yield* get("/app/assets/..%2F.vite%2Fmanifest.json")
      assert.strictEqual(traversal.status, 404)
    }))

  it.effect("deep links serve the same shell; unknown /api paths are still JSON 404s", () =>
    Effect.gen(function*() {
      for (const path of ["/sessions", "/sessions/ses_123", "/workflows", "/settings", "/operator", "/sign-in"]) {
        const page = yield* get(path)
        assert.strictEqual(page.status, 200, path)
        assert.strictEqual(page.headers.get("cache-control"), "no-store", path)
        assert.include(page.headers.get("content-security-policy") ?? "", "frame-ancestors 'none'", path)
        assert.include(page.text, `<script id="cowork-bootstrap"`, path)
      }
      for (const path of ["/api/nope", "/api/sessions/x/nope", "/nope"]) {
        const missing = yield* get(path)
        assert.strictEqual(missing.status, 404, path)
        assert.match(missing.headers.get("content-type") ?? "", /^application\/json/, path)
        assert.deepInclude(JSON.parse(missing.text).error, { code: "not_found", message: "no such route" }, path)
      }
    }))
})

it("the build output is not committed", () => {
  const ignored = Fs.readFileSync(new URL("../../../.gitignore", import.meta.url), "utf8")
  assert.include(ignored.split("\n"), "apps/workbench/dist/")
})
