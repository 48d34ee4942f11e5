import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Page } from "playwright-core"
import { launch, type Problems } from "./support/Chromium.ts"
import { Stack } from "./support/Stack.ts"

const images = Path.resolve(import.meta.dirname, "../../../../docs/images")
const WORKER_ID = "browser-worker-1"
/** The worker that is running now (a test kills the first one and starts another). */
let liveWorker = WORKER_ID

let stack: Stack
let browser: Awaited<ReturnType<typeof launch>>
let page: Page
/** Console errors allowed only while the web process is down on purpose (the page's reconnect attempts). */
const outage: Array<string> = []

/** The docs' screenshots are rewritten only when asked (`COWORK_UPDATE_SCREENSHOTS=1`), so test runs leave the tree clean. */
const updateScreenshots = process.env.COWORK_UPDATE_SCREENSHOTS === "1"

/** Renders the view as a screenshot (so every run exercises it); writes `docs/images/<name>.png` only when asked. */
const shot = async (name: string, target: Page = page) => {
  if (!updateScreenshots) {
    await target.screenshot({ fullPage: false })
    return
  }
  Fs.mkdirSync(images, { recursive: true })
  await target.screenshot({ path: Path.join(images, `${name}.png`), fullPage: false })
}


/** Waits until the page's assistant message with this final text is there, and returns how many match. */
const finalAnswer = async (expected: string, timeout = 60_000) => {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll(".msg.assistant:not(.streaming) .text")].some((el) => el.textContent === want),
    expected,
    { timeout }
  )
  return page.locator(".msg.assistant .text", { hasText: expected }).count()
}

const newSession = async (title: string) => {
  await page.goto(`${stack.baseUrl}/sessions`)
  await page.getByLabel("Title of the new session").fill(title)
  await page.getByRole("button", { name: "New session" }).click()
  await page.waitForURL(/\/sessions\/[^/]+$/)
  await page.getByRole("heading", { name: title, level: 1 }).waitFor()
  await page.locator(".badge.conn-live").waitFor()
  return decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!)
}

const sendPrompt = async (prompt: string) => {
  const box = page.getByLabel("Prompt")
  await box.fill(prompt)
  await box.press("Enter")
}

const assertNoProblems = (problems: Problems, allowed: ReadonlyArray<string> = []) => {
  assert.deepStrictEqual(problems.csp, [], "no CSP violation")
  assert.deepStrictEqual(problems.console.filter((line) => !allowed.includes(line)), [], "no console error")
}

beforeAll(async () => {
  stack = await Stack.start()
  await stack.startWorker(WORKER_ID)
  browser = await launch()
  page = browser.page
})

afterAll(async () => {
  await browser?.close()
  await stack?.close()
})

describe("the workbench in Chromium", () => {
  it("signs in with the owner token: the cookie is the only credential; nothing in storage or the URL", async () => {
    await page.goto(`${stack.baseUrl}/`)
    await page.getByRole("heading", { name: "Sign in" }).waitFor()
    await shot("sign-in")
    await page.getByLabel("Owner token").fill(stack.ownerToken)
    await page.getByRole("button", { name: "Sign in" }).click()
    await page.getByRole("heading", { name: "Sessions" }).waitFor()
    assert.strictEqual(await page.getByLabel("Owner token").count(), 0)

    const cookies = await browser.context.cookies(stack.baseUrl)
    const session = cookies.find((cookie) => cookie.name === "cowork_session")
    assert.isDefined(session)
    assert.isTrue(session!.httpOnly, "script cannot read the session cookie")
    assert.notInclude(session!.value, stack.ownerToken.slice(4, 20))
    const stored = await page.evaluate(() => ({
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
      url: location.href,
      bootstrap: document.getElementById("cowork-bootstrap")?.textContent ?? ""
    }))
    for (const [where, value] of Object.entries(stored)) {
      assert.notInclude(value, stack.ownerToken, `${where} holds no token`)
      assert.notMatch(value, /occ_/, `${where} holds no token`)
    }
    assert.strictEqual(stored.local, "{}")
    assert.strictEqual(stored.session, "{}")
    assertNoProblems(browser.problems)
  })

  it("creates a session, sends a prompt with Enter, and shows the answer streaming in", async () => {
    await newSession("First steps")
    await sendPrompt("hello workbench [[slow:150]] [[events:8]]")
    await page.locator(".msg.user .text", { hasText: "hello workbench" }).waitFor()
    // Deltas first: the message is on the page, still streaming, before the final text.
    await page.locator(".msg.assistant.streaming").waitFor({ timeout: 30_000 })
    assert.strictEqual(await finalAnswer("echo: hello workbench"), 1)
    await page.locator('[data-testid="session-status"]', { hasText: "idle" }).waitFor()

    // Shift+Enter makes a new line instead of sending.
    const box = page.getByLabel("Prompt")
    await box.fill("two")
    await box.press("Shift+Enter")
    await box.pressSequentially("lines [[tool]]")
    assert.strictEqual(await box.inputValue(), "two\nlines [[tool]]")
    await box.press("Enter")
    assert.strictEqual(await finalAnswer("echo: two lines"), 1)
    const tool = page.locator(".msg.tool details")
    await tool.locator("summary", { hasText: "echo" }).waitFor()
    assert.isFalse(await tool.evaluate((el) => (el as HTMLDetailsElement).open), "tool calls start collapsed")
    await tool.locator("summary").click()
    assert.include(await tool.locator("pre").first().innerText(), "echo: two lines")
    await shot("session")
    assertNoProblems(browser.problems)
  })

  it("answers a permission request and a question with the buttons; the turn goes on with the answer", async () => {
    await newSession("Asks")
    await sendPrompt("change the file [[permission]]")
    const ask = page.getByRole("group", { name: "Permission request: edit" })
    await ask.waitFor({ timeout: 30_000 })
    await ask.getByRole("button", { name: "Allow once" }).click()
    await ask.getByText("Answered: once").waitFor({ timeout: 30_000 })
    await page.locator(".msg.assistant:not(.streaming) .text", { hasText: "[permission once]" }).waitFor({ timeout: 30_000 })
    await page.locator(".msg.tool summary", { hasText: "edit" }).waitFor()

    await sendPrompt("shall we [[question]]")
    const question = page.getByRole("group", { name: "Question" })
    await question.getByText("Confirm: Proceed?").waitFor({ timeout: 30_000 })
    await question.getByLabel("yes").check()
    await question.getByRole("button", { name: "Answer" }).click()
    await question.getByText("Answered: yes").waitFor({ timeout: 30_000 })
    await page.locator(".msg.assistant:not(.streaming) .text", { hasText: "[answered: yes]" }).waitFor({ timeout: 30_000 })
    await shot("session-asks")
    assertNoProblems(browser.problems)
  })

  it("uploads artifacts (file picker and drag and drop) and downloads them", async () => {
    await newSession("Artifacts")
    await page.locator("#artifact-file").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("picked file\n") })
    await page.getByRole("link", { name: "notes.txt" }).waitFor()
    await page.evaluate(() => {
      const transfer = new DataTransfer()
      transfer.items.add(new File(['{"dropped":true}'], "dropped.json", { type: "application/json" }))
      document.querySelector(".artifacts")!.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }))
    })
    await page.getByRole("link", { name: "dropped.json" }).waitFor()
    for (const [name, content] of [["notes.txt", "picked file\n"], ["dropped.json", '{"dropped":true}']] as const) {
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name }).click()])
      const path = await download.path()
      assert.strictEqual(Fs.readFileSync(path, "utf8"), content, name)
      assert.strictEqual(download.suggestedFilename(), name)
    }
    assertNoProblems(browser.problems)
  })

  it("aborts a long run", async () => {
    await newSession("Long run")
    await sendPrompt("think forever [[hang]]")
    await page.locator('[data-testid="session-status"]', { hasText: "running" }).waitFor({ timeout: 30_000 })
    await page.getByRole("button", { name: "Abort" }).click()
    await page.locator(".msg.note-abort", { hasText: "Aborted" }).waitFor({ timeout: 30_000 })
    await page.locator('[data-testid="session-status"]', { hasText: "aborted" }).waitFor()
    assert.isTrue(await page.getByLabel("Prompt").isDisabled())
    assertNoProblems(browser.problems)
  })

  it("keeps streaming across a killed and restarted web process, without a duplicate or a gap", async () => {
    const id = await newSession("Survives a restart")
    const words = Array.from({ length: 24 }, (_, i) => `w${i}`).join(" ")
    await sendPrompt(`${words} [[slow:250]] [[events:24]]`)
    await page.locator(".msg.assistant.streaming").waitFor({ timeout: 30_000 })
    const before = browser.problems.console.length
    const resumes: Array<string | undefined> = []
    const onRequest = (request: { url: () => string; headers: () => Record<string, string> }) => {
      if (request.url().includes(`/api/sessions/${id}/events`)) resumes.push(request.headers()["last-event-id"])
    }
    page.on("request", onRequest)
    await stack.killWeb()
    await page.locator(".badge.conn-reconnecting").waitFor({ timeout: 30_000 })
    await stack.startWeb()
    assert.strictEqual(await finalAnswer(`echo: ${words}`), 1, "the answer once")
    page.off("request", onRequest)
    assert.isAbove(resumes.length, 0, "the page reconnected")
    for (const header of resumes) assert.match(header ?? "", /^[1-9][0-9]*$/, "every reconnect resumes with Last-Event-ID")
    outage.push(...browser.problems.console.slice(before))
    for (const line of outage) assert.match(line, /net::ERR_|Failed to load resource/, line)

    // What the page shows is exactly the server's log folded once: one item per event key, nothing twice.
    const seqs = await page.locator(".timeline > li").evaluateAll((items) => items.map((el) => el.getAttribute("data-seq")))
    assert.strictEqual(new Set(seqs).size, seqs.length, `no repeated item: ${seqs.join(",")}`)
    assert.strictEqual(await page.locator(".msg.assistant").count(), 1)
    assert.strictEqual(await page.locator(".msg.user").count(), 1)
    const view = await stack.api("GET", `/api/sessions/${id}/view`)
    assert.deepStrictEqual(
      view.messages.map((m: { role: string; text: string }) => [m.role, m.text]),
      [["user", `${words} [[slow:250]] [[events:24]]`], ["assistant", `echo: ${words}`]]
    )
    assertNoProblems(browser.problems, outage)
  })

  it("shows a runtime error, and a turn retried after its worker died (command.retried) with the partial text dropped", async () => {
    await newSession("Failures")
    await sendPrompt("break [[fail]]")
    await page.locator(".msg.error-item", { hasText: "scripted failure" }).waitFor({ timeout: 30_000 })
    await page.locator('[data-testid="session-status"]', { hasText: "idle" }).waitFor()

    const words = Array.from({ length: 30 }, (_, i) => `r${i}`).join(" ")
    await sendPrompt(`${words} [[slow:400]] [[events:30]]`)
    await page.locator(".msg.assistant.streaming").waitFor({ timeout: 30_000 })
    await stack.startWorker("browser-worker-2")
    await stack.killWorker(WORKER_ID)
    liveWorker = "browser-worker-2"
    await page.locator(".msg.note-retry", { hasText: /^Retried: attempt 2 replaces attempt 1/ }).waitFor({ timeout: 60_000 })
    assert.strictEqual(await finalAnswer(`echo: ${words}`, 90_000), 1)
    assert.strictEqual(await page.locator(".msg.assistant .text", { hasText: "echo: r0" }).count(), 1, "the abandoned attempt's partial text is gone")
    assert.strictEqual(await page.locator(".msg.assistant.streaming").count(), 0)
    assert.strictEqual(await page.locator(".msg.assistant .who", { hasText: "incomplete" }).count(), 1, "the failed turn's partial text stays, marked")
    assertNoProblems(browser.problems, outage)
  })

  it("a cursor older than the retained log: snapshot.required reloads the projected view, then the stream goes on", async () => {
    const { session } = await stack.api("POST", "/api/sessions", { title: "Pruned" })
    await stack.api("POST", `/api/sessions/${session.id}/prompt`, { text: "early one" })
    await stack.api("POST", `/api/sessions/${session.id}/prompt`, { text: "early two" })
    const view = await stack.viewWhen(session.id, (v) => v.status === "idle" && v.messages.length === 4)
    // What the retention job does: events before the last one are gone (EventLog.prune's statement).
    await stack.sql(
      `WITH pruned AS (DELETE FROM cloud_session_events WHERE session_id = $1 AND sequence < $2)
       UPDATE cloud_session_projections p SET earliest_sequence = GREATEST(p.earliest_sequence, LEAST($2::bigint, p.last_sequence + 1))
       WHERE p.session_id = $1`,
      [session.id, view.projectedSequence]
    )
    const snapshots: Array<string> = []
    const onResponse = async (response: { url: () => string; headers: () => Record<string, string>; text: () => Promise<string> }) => {
      if (response.url().includes(`/api/sessions/${session.id}/events`) && (await response.text().catch(() => "")).includes("snapshot.required")) {
        snapshots.push(response.url())
      }
    }
    page.on("response", onResponse)
    await page.goto(`${stack.baseUrl}/sessions/${session.id}`)
    assert.strictEqual(await finalAnswer("echo: early one"), 1)
    assert.strictEqual(await finalAnswer("echo: early two"), 1)
    await page.locator(".badge.conn-live").waitFor()
    await sendPrompt("after the snapshot")
    assert.strictEqual(await finalAnswer("echo: after the snapshot"), 1)
    assert.strictEqual(await page.locator(".msg.user").count(), 3)
    page.off("response", onResponse)
    assert.strictEqual(snapshots.length, 1, "the server answered snapshot.required once")
    assertNoProblems(browser.problems, outage)
  })

  it("lists sessions with search, status filter and live updates from /api/events", async () => {
    await page.goto(`${stack.baseUrl}/sessions`)
    await page.locator('li[data-session-id]').first().waitFor()
    const { session } = await stack.api("POST", "/api/sessions", { title: "Arrived live" })
    await page.locator(`li[data-session-id="${session.id}"]`).waitFor({ timeout: 30_000 })
    const onlyTitle = (title: string) =>
      page.waitForFunction((want) => {
        const items = [...document.querySelectorAll("li[data-session-id] .title")]
        return items.length === 1 && items[0]!.textContent === want
      }, title)
    await page.getByLabel("Search").fill("Artifacts")
    await onlyTitle("Artifacts")
    await page.getByLabel("Search").fill("")
    await page.getByLabel("Status").selectOption("aborted")
    await onlyTitle("Long run")
    await page.getByLabel("Status").selectOption("")
    await page.waitForFunction(() => document.querySelectorAll("li[data-session-id]").length >= 5)

    // Threads views: a tag set on a session lists it alone; the smart filters show their counts.
    await page.locator("li[data-session-id] a", { hasText: "First steps" }).click()
    await page.getByLabel("Tags").fill("billing, Urgent")
    await page.getByRole("button", { name: "Save tags" }).click()
    await page.getByText("Tags: #billing #urgent").waitFor()
    await page.getByRole("link", { name: "← Sessions" }).click()
    await page.getByLabel("Tag", { exact: true }).selectOption("urgent")
    await onlyTitle("First steps")
    assert.include(await page.locator("li[data-session-id]").innerText(), "#billing")
    await page.getByLabel("Tag", { exact: true }).selectOption("")
    const filters = page.getByRole("group", { name: "Smart filters" })
    await filters.getByRole("button", { name: /^Mine/ }).waitFor()
    assert.strictEqual(await filters.getByRole("button").count(), 4)
    await page.waitForFunction(() => document.querySelectorAll("li[data-session-id]").length >= 5)
    await shot("sessions")
    assertNoProblems(browser.problems, outage)
  })

  it("pages through many sessions as the list scrolls (keyset)", async () => {
    for (let i = 0; i < 40; i++) await stack.api("POST", "/api/sessions", { title: `bulk ${String(i).padStart(2, "0")}` })
    await page.goto(`${stack.baseUrl}/sessions`)
    await page.locator('li[data-session-id]').nth(19).waitFor()
    await page.locator("li[data-session-id]").last().scrollIntoViewIfNeeded()
    await page.mouse.wheel(0, 20_000)
    await page.waitForFunction(() => document.querySelectorAll("li[data-session-id]").length >= 40, undefined, { timeout: 30_000 })
    const ids = await page.locator("li[data-session-id]").evaluateAll((items) => items.map((el) => el.getAttribute("data-session-id")))
    assert.strictEqual(new Set(ids).size, ids.length, "no session twice across pages")
    assertNoProblems(browser.problems, outage)
  })

  it("settings: an API token's secret is shown once; provider keys show metadata only", async () => {
    await page.goto(`${stack.baseUrl}/settings`)
    await page.getByLabel("Name").fill("ci")
    await page.getByRole("button", { name: "Create token" }).click()
    const secret = await page.getByLabel("New token secret").inputValue()
    assert.match(secret, /^occ_/)
    await page.getByRole("button", { name: "Done" }).click()
    assert.strictEqual(await page.getByLabel("New token secret").count(), 0)
    assert.notInclude(await page.content(), secret, "gone from the page once dismissed")
    await page.getByRole("cell", { name: "ci", exact: true }).waitFor()

    await page.getByLabel("Provider", { exact: true }).fill("openai")
    await page.getByLabel("API key").fill("sk-test-browser-key-1234")
    await page.getByRole("button", { name: "Add or rotate key" }).click()
    await page.getByRole("cell", { name: "…1234" }).waitFor()
    assert.strictEqual(await page.getByLabel("API key").inputValue(), "")
    assert.notInclude(await page.content(), "sk-test-browser-key")
    await shot("settings")
    await page.getByRole("button", { name: "Revoke ci" }).click()
    await page.getByRole("cell", { name: "revoked" }).waitFor()
    await page.getByRole("button", { name: "Remove the openai key" }).click()
    await page.getByText("No provider keys stored.").waitFor()
    assertNoProblems(browser.problems, outage)
  })

  it("workflows: create, run now, see the run's session", async () => {
    await page.goto(`${stack.baseUrl}/workflows`)
    await page.getByLabel("Title").fill("Daily digest")
    await page.getByLabel("Instructions").fill("summarise the day")
    await page.getByLabel("Trigger").selectOption("cron")
    await page.getByLabel("Cron expression").fill("0 9 * * 1-5")
    await page.getByLabel("Time zone").fill("Mars/Base")
    await page.locator('[data-testid="cron-preview"]', { hasText: "unknown time zone" }).waitFor()
    await page.getByLabel("Time zone").fill("Europe/Berlin")
    const preview = page.locator('[data-testid="cron-preview"] li')
    await preview.first().waitFor()
    assert.strictEqual(await preview.count(), 3)
    assert.include(await preview.first().innerText(), "Europe/Berlin")
    await page.getByRole("button", { name: "Create workflow" }).click()
    await page.getByRole("cell", { name: "Daily digest" }).waitFor()
    await page.getByRole("button", { name: "Run now" }).click()
    await page.getByRole("button", { name: "Runs" }).click()
    await page.locator("section[aria-labelledby=runs-title] a", { hasText: "session" }).first().waitFor({ timeout: 30_000 })
    await shot("workflows")
    await page.getByRole("button", { name: "Pause" }).click()
    await page.getByRole("button", { name: "Resume" }).waitFor()
    assertNoProblems(browser.problems, outage)
  })

  it("the operator page (operator token held in page memory only) shows the worker this test started", async () => {
    await page.goto(`${stack.baseUrl}/operator`)
    await page.getByLabel("Operator token").fill(stack.ownerToken)
    await page.getByRole("button", { name: "Open" }).click()
    const row = page.locator(`tr[data-worker-id="${liveWorker}"]`)
    await row.waitFor({ timeout: 30_000 })
    assert.include(await row.innerText(), "worker")
    assert.notInclude(await row.innerText(), "stale")
    await page.locator('[data-testid="queue-depth"]').waitFor()
    await page.getByRole("list", { name: "Audit log" }).getByText("auth.sign_in").first().waitFor()
    await shot("operator")

    // Lifecycle buttons: a registered worker goes pending → active → paused; only the allowed actions are offered.
    const { pool } = await stack.api("POST", "/api/admin/worker-pools", { name: "browser-pool", mode: "self_hosted", maxWorkers: 2, maxConcurrentWork: 2 })
    const { worker } = await stack.api("POST", "/api/admin/workers", { poolId: pool.id, name: "managed-1" })
    await page.getByRole("button", { name: "Refresh" }).click()
    await page.getByRole("button", { name: "activate managed-1" }).click()
    await page.getByRole("button", { name: "pause managed-1" }).click()
    await page.getByRole("button", { name: "resume managed-1" }).waitFor()
    assert.strictEqual(await page.getByRole("button", { name: "activate managed-1" }).count(), 0)
    assert.strictEqual((await stack.api("GET", "/api/admin/workers")).workers.find((w: { id: string }) => w.id === worker.id).status, "paused")

    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href)
    assert.notInclude(stored, stack.ownerToken)
    assertNoProblems(browser.problems, outage)
  })

  it("works from the keyboard: a skip link first, then the controls in order, and Enter opens a session", async () => {
    await page.goto(`${stack.baseUrl}/sessions`)
    await page.locator("li[data-session-id]").first().waitFor()
    await page.keyboard.press("Tab")
    assert.strictEqual(await page.evaluate(() => document.activeElement?.textContent), "Skip to content")
    await page.keyboard.press("Enter")
    assert.strictEqual(await page.evaluate(() => document.activeElement?.id), "main")
    // Every form control has an accessible name.
    const unnamed = await page.locator("input, select, textarea, button").evaluateAll((elements) =>
      elements.filter((el) => {
        const labelled = (el as HTMLInputElement).labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
        return !labelled && (el.textContent ?? "").trim() === "" && el.getAttribute("type") !== "hidden"
      }).map((el) => el.outerHTML.slice(0, 80)))
    assert.deepStrictEqual(unnamed, [])
    const first = page.locator("li[data-session-id] a").first()
    await first.focus()
    const title = await first.locator(".title").innerText()
    await page.keyboard.press("Enter")
    await page.getByRole("heading", { name: title, level: 1 }).waitFor()
    await page.getByLabel("Prompt").focus()
    assert.strictEqual(await page.evaluate(() => document.activeElement?.id), "prompt-text")
    assertNoProblems(browser.problems, outage)
  })

  it("dark theme and a narrow screen", async () => {
    const dark = await browser.context.newPage()
    await dark.emulateMedia({ colorScheme: "dark" })
    await dark.setViewportSize({ width: 390, height: 800 })
    await dark.goto(`${stack.baseUrl}/sessions`)
    await dark.locator("li[data-session-id]").first().waitFor()
    const background = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor)
    assert.strictEqual(background, "rgb(17, 19, 24)")
    const overflow = await dark.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    assert.isAtMost(overflow, 0, "no horizontal scrolling on a phone-sized screen")
    await shot("sessions-dark-narrow", dark)
    await dark.close()
    assertNoProblems(browser.problems, outage)
  })

  it("signs out: the cookie is gone and the API refuses the old session", async () => {
    await page.goto(`${stack.baseUrl}/sessions`)
    const before = (await browser.context.cookies(stack.baseUrl)).find((cookie) => cookie.name === "cowork_session")!
    await page.getByRole("button", { name: "Sign out" }).click()
    await page.getByRole("heading", { name: "Sign in" }).waitFor()
    assert.isUndefined((await browser.context.cookies(stack.baseUrl)).find((cookie) => cookie.name === "cowork_session"))
    const replay = await fetch(`${stack.baseUrl}/api/workspace`, { headers: { cookie: `cowork_session=${before.value}` } })
    assert.strictEqual(replay.status, 401)
    assertNoProblems(browser.problems, outage)
  })
})
