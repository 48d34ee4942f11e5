import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"

/** Debian's Chromium (`apt-get install chromium`), never a browser a test tool downloads. */
const CHROMIUM = "/usr/bin/chromium"

/** Flags for this sandbox: no GPU, no sandbox (root), and nothing that reaches for Google's hosts. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run"
]

export interface Problems {
  /** Console errors and uncaught page errors. */
  readonly console: Array<string>
  /** `securitypolicyviolation` events: the blocked URI and directive. */
  readonly csp: Array<string>
}

/** A fresh profile (`--user-data-dir`) per browser; the problems every page reports are collected. */
export const launch = async (options: { readonly colorScheme?: "light" | "dark" } = {}) => {
  const userDataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-chromium-"))
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
    colorScheme: options.colorScheme ?? "light",
    acceptDownloads: true
  })
  const problems: Problems = { console: [], csp: [] }
  await context.exposeBinding("__reportCsp", (_source, text: string) => void problems.csp.push(text))
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      ;(window as unknown as { __reportCsp: (text: string) => void }).__reportCsp(`${event.violatedDirective} ${event.blockedURI}`)
    })
  })
  const watch = (page: Page) => {
    page.on("console", (message) => {
      if (message.type() === "error") problems.console.push(`${page.url()}: ${message.text()}`)
    })
    page.on("pageerror", (error) => problems.console.push(`${page.url()}: uncaught ${error.message}`))
  }
  context.on("page", watch)
  for (const page of context.pages()) watch(page)
  const page = context.pages()[0] ?? await context.newPage()
  return {
    context,
    page,
    problems,
    close: async () => {
      await context.close()
      Fs.rmSync(userDataDir, { recursive: true, force: true })
    }
  }
}
