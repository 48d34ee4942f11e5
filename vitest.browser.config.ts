import { defineConfig } from "vitest/config"
import { browserProjects } from "./vitest.workspace.ts"

/**
 * `npm run test:browser`: the workbench in Debian's Chromium (playwright-core), against `cowork web` and
 * `cowork worker` processes. Kept out of `npm test` (slow: real processes and a browser); CI runs it as its own step.
 */
export default defineConfig({
  test: {
    globalSetup: ["./test/globalSetup.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
    fileParallelism: false,
    reporters: ["default", ["json", { outputFile: ".vitest-browser-report.json" }]],
    projects: browserProjects
  }
})
