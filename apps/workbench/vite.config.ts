import { defineConfig } from "vite"

/**
 * The workbench bundle: Preact through Vite's own JSX transform (oxc; no Babel), one entry, hashed files under
 * dist/assets served by the web role at /app/assets/ (apps/web/src/Workbench.ts reads dist/.vite/manifest.json and
 * renders the HTML shell itself, with a per-request CSP nonce, so there is no index.html here).
 */
export default defineConfig({
  root: import.meta.dirname,
  base: "/app/",
  publicDir: false,
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    manifest: true,
    assetsDir: "assets",
    target: "es2022",
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    rolldownOptions: { input: "src/main.tsx" }
  }
})
