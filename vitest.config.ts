import { defineConfig } from "vitest/config"
import { projects } from "./vitest.workspace.ts"

export default defineConfig({
  test: {
    globalSetup: ["./test/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The JSON report is what test/assertTestReport.ts reads after the run (`npm test`).
    reporters: ["default", ["json", { outputFile: ".vitest-report.json" }]],
    projects
  }
})
