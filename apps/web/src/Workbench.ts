import { Config, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { publicConfigOf } from "./AuthHandlers.ts"
import { authSettings } from "./AuthSettings.ts"
import { errorResponse } from "./ErrorResponse.ts"

/**
 * The browser workbench (apps/workbench) as the web role serves it: the HTML shell at `/` and at every deep link
 * the app routes itself, and its hashed, immutable assets under `/app/assets/`. The assets are Vite's build output
 * (`npm ci` builds them in the root `prepare` script; `npm run build:workbench` rebuilds), read once at start; the
 * shell is rendered per request around a fresh CSP nonce, with the public config (never a credential) in a JSON
 * bootstrap element.
 */

/** Paths the app routes in the browser: each serves the same shell (`/x/*` matches `/x` too). */
const SHELL_PATHS = ["/", "/sign-in", "/sessions/*", "/workflows/*", "/settings/*", "/operator/*"] as const

const ASSET_PREFIX = "/app/assets/"

const IMMUTABLE = "public, max-age=31536000, immutable"

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".map": "application/json; charset=utf-8"
}

export interface BuiltWorkbench {
  /** The entry script and its stylesheets, as `/app/assets/...` URLs. */
  readonly script: string
  readonly styles: ReadonlyArray<string>
  /** Every asset by file name (no directories): the only names `/app/assets/*` answers. */
  readonly assets: ReadonlyMap<string, { readonly bytes: Uint8Array; readonly contentType: string }>
}

interface ManifestChunk {
  readonly file: string
  readonly isEntry?: boolean
  readonly css?: ReadonlyArray<string>
}

/** Reads Vite's build (`<dir>/.vite/manifest.json` and `<dir>/assets/*`); `undefined` when it was never built. */
export const readBuild = (dir: string): BuiltWorkbench | undefined => {
  const manifestPath = Path.join(dir, ".vite", "manifest.json")
  if (!Fs.existsSync(manifestPath)) return undefined
  const manifest = JSON.parse(Fs.readFileSync(manifestPath, "utf8")) as Record<string, ManifestChunk>
  const entry = Object.values(manifest).find((chunk) => chunk.isEntry === true)
  if (entry === undefined) return undefined
  const assets = new Map<string, { bytes: Uint8Array; contentType: string }>()
  const assetDir = Path.join(dir, "assets")
  for (const name of Fs.existsSync(assetDir) ? Fs.readdirSync(assetDir) : []) {
    const file = Path.join(assetDir, name)
    if (!Fs.statSync(file).isFile()) continue
    assets.set(name, {
      bytes: Fs.readFileSync(file),
      contentType: CONTENT_TYPES[Path.extname(name)] ?? "application/octet-stream"
    })
  }
  const url = (file: string) => `/app/${file}`
  return { script: url(entry.file), styles: (entry.css ?? []).map(url), assets }
}

/** The default build directory: apps/workbench/dist beside this app. */
export const DEFAULT_BUILD_DIR = Path.resolve(import.meta.dirname, "../../workbench/dist")

/** The shell's Content-Security-Policy for one nonce. */
const contentSecurityPolicy = (nonce: string): string =>
  [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}'`,
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'"
  ].join("; ")

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** JSON safe inside a `<script>` element: no `<`, so no `</script>` or `<!--` can end or confuse it. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029")

export const renderShell = (build: BuiltWorkbench, nonce: string, bootstrap: unknown): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Cowork Cloud</title>
<link rel="icon" href="data:,">
${build.styles.map((href) => `<link rel="stylesheet" href="${escapeHtml(href)}">`).join("\n")}
<script id="cowork-bootstrap" type="application/json" nonce="${nonce}">${scriptJson(bootstrap)}</script>
<script type="module" src="${escapeHtml(build.script)}" nonce="${nonce}"></script>
</head>
<body>
<div id="app"></div>
<noscript>Cowork Cloud needs JavaScript. The API is documented at <a href="/docs">/docs</a>.</noscript>
</body>
</html>
`

const SHELL_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
}

/** The shell and asset routes over the build in `OPEN_COWORK_CLOUD_WORKBENCH_DIR` (default apps/workbench/dist). */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter> = HttpRouter.use(Effect.fnUntraced(function*(router) {
  const dir = yield* Config.String("OPEN_COWORK_CLOUD_WORKBENCH_DIR").pipe(Config.withDefault(DEFAULT_BUILD_DIR), Effect.orDie)
  const settings = yield* authSettings.pipe(Effect.orDie)
  const build = readBuild(dir)
  if (build === undefined) {
    yield* Effect.logWarning("the workbench is not built: `/` answers 503 until `npm run build:workbench` has run").pipe(
      Effect.annotateLogs({ dir })
    )
  }
  const bootstrap = { ...publicConfigOf(settings), apiBase: "/api" }

  const shell = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (build === undefined) {
      return HttpServerResponse.text("The workbench is not built. Run `npm run build:workbench`, then reload.\n", {
        status: 503,
        headers: { ...SHELL_HEADERS, "retry-after": "5" }
      })
    }
    const nonce = Crypto.randomBytes(18).toString("base64")
    // Whether a session cookie came with the page (not whether it is valid): without one the app shows the sign-in
    // form at once instead of asking /api/workspace for a 401.
    const cookie = request.cookies[settings.cookieName]
    const page = { ...bootstrap, sessionCookie: cookie !== undefined && cookie !== "" }
    return HttpServerResponse.text(renderShell(build, nonce, page), {
      contentType: "text/html; charset=utf-8",
      headers: { ...SHELL_HEADERS, "content-security-policy": contentSecurityPolicy(nonce) }
    })
  })
  for (const path of SHELL_PATHS) yield* router.add("GET", path, shell)

  yield* router.add("GET", `${ASSET_PREFIX}*`, Effect.gen(function*() {
    const params = yield* HttpRouter.params
    const asset = build?.assets.get(params["*"] ?? "")
    if (asset === undefined) return errorResponse(404, "no such asset")
    return HttpServerResponse.uint8Array(asset.bytes, {
      contentType: asset.contentType,
      headers: { "cache-control": IMMUTABLE, "x-content-type-options": "nosniff" }
    })
  }))
}))
