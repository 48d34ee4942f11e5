// `npm test` runs this after vitest: the run passes only if vitest's own JSON report says every test passed.
// An exit code alone was once not enough (a library's process exit hook turned a failing run into exit 0); the
// report is written by vitest itself, so a failure it counted cannot be hidden by how the process ended.
import * as Fs from "node:fs"

const path = process.argv[2] ?? ".vitest-report.json"
if (!Fs.existsSync(path)) {
  console.error(`test report check: ${path} is missing (did vitest run?)`)
  process.exit(1)
}
const report = JSON.parse(Fs.readFileSync(path, "utf8")) as {
  readonly success: boolean
  readonly numTotalTests: number
  readonly numPassedTests: number
  readonly numFailedTests: number
  readonly numFailedTestSuites: number
}
const line = `${report.numPassedTests} passed, ${report.numFailedTests} failed`
if (!report.success || report.numFailedTests > 0 || report.numFailedTestSuites > 0 || report.numTotalTests === 0) {
  console.error(`test report check: the run did not pass (${report.numFailedTestSuites} failed files)`)
  console.log(line)
  process.exit(1)
}
console.log(line)
