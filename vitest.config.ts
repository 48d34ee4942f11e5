import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"
import { projects } from "./vitest.workspace.ts"

export default defineConfig({
  test: {
    globalSetup: ["./test/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Vitest's default is one fork fewer than the cores: on a 2-core machine one file at a time. Most files wait on
    // child processes, Postgres or sockets more than they compute, so two forks there (docs/benchmarks.md).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // The JSON report is what test/assertTestReport.ts reads after the run (`npm test`).
    reporters: ["default", ["json", { outputFile: ".vitest-report.json" }]],
    projects
  }
})
