import type { Workflow, WorkflowRun } from "@cowork/domain"
import { Cron } from "croner"
import { useEffect, useMemo, useState } from "preact/hooks"
import { api, errorText, run } from "../api.ts"
import { onLinkClick } from "../router.ts"
import { when } from "./SessionList.tsx"

const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone

/** The next runs of a cron schedule in its zone (and the viewer's), or why it is not valid. */
const previewCron = (expression: string, timezone: string, count = 3): ReadonlyArray<string> | string => {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: timezone })
  } catch {
    return `unknown time zone “${timezone}”`
  }
  try {
    const runs = new Cron(expression, { timezone, paused: true }).nextRuns(count)
    const inZone = new Intl.DateTimeFormat(undefined, { timeZone: timezone, dateStyle: "medium", timeStyle: "short" })
    const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" })
    return runs.map((run) => timezone === localZone() ? inZone.format(run) : `${inZone.format(run)} ${timezone} (${local.format(run)} here)`)
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

/** Workflows: list, create (manual or cron schedule with a time zone), run now, pause / resume, recent runs. */
export const WorkflowsView = () => {
  const [workflows, setWorkflows] = useState<ReadonlyArray<Workflow>>([])
  const [runs, setRuns] = useState<{ readonly workflowId: string; readonly runs: ReadonlyArray<WorkflowRun> } | undefined>()
  const [error, setError] = useState<string | undefined>()
  const [message, setMessage] = useState<string | undefined>()
  const [title, setTitle] = useState("")
  const [instructions, setInstructions] = useState("")
  const [agentName, setAgentName] = useState("build")
  const [schedule, setSchedule] = useState<"manual" | "cron">("manual")
  const [expression, setExpression] = useState("0 9 * * 1-5")
  const [timezone, setTimezone] = useState(localZone())

  const preview = useMemo(() => (schedule === "cron" ? previewCron(expression, timezone) : undefined), [schedule, expression, timezone])

  const load = () => run(api.workflows.list({ query: { limit: 100 } })).then((page) => setWorkflows(page.workflows), (f) => setError(errorText(f)))
  useEffect(() => void load(), [])

  const act = async (action: () => Promise<string | undefined>) => {
    try {
      setMessage(await action())
      setError(undefined)
      await load()
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  const create = (event: Event) => {
    event.preventDefault()
    void act(async () => {
      await run(api.workflows.create({
        payload: {
          title: title.trim(),
          instructions,
          agentName: agentName.trim(),
          triggers: schedule === "manual"
            ? [{ type: "manual", enabled: true }]
            : [{ type: "manual", enabled: true }, { type: "schedule", enabled: true, schedule: { type: "cron", expression, timezone } }]
        }
      }))
      setTitle("")
      setInstructions("")
      return `Created “${title.trim()}”.`
    })
  }

  const showRuns = (workflowId: string) =>
    void run(api.workflows.runs({ params: { id: workflowId }, query: { limit: 20 } })).then(
      (page) => setRuns({ workflowId, runs: page.runs }),
      (f) => setError(errorText(f))
    )

  // An open runs panel follows new runs and their sessions (a run gets its session a moment after it starts).
  const openRuns = runs?.workflowId
  useEffect(() => {
    if (openRuns === undefined) return
    const timer = setInterval(() => showRuns(openRuns), 3_000)
    return () => clearInterval(timer)
  }, [openRuns])

  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      <form class="card grid" onSubmit={create} aria-label="New workflow">
        <label for="wf-title">Title</label>
        <input id="wf-title" required maxLength={200} value={title} onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
        <label for="wf-instructions">Instructions</label>
        <textarea id="wf-instructions" required rows={3} value={instructions} onInput={(e) => setInstructions((e.currentTarget as HTMLTextAreaElement).value)} />
        <label for="wf-agent">Agent</label>
        <input id="wf-agent" required value={agentName} onInput={(e) => setAgentName((e.currentTarget as HTMLInputElement).value)} />
        <label for="wf-schedule">Trigger</label>
        <select id="wf-schedule" value={schedule} onChange={(e) => setSchedule((e.currentTarget as HTMLSelectElement).value as "manual" | "cron")}>
          <option value="manual">Manual only</option>
          <option value="cron">Cron schedule</option>
        </select>
        {schedule === "cron" && (
          <>
            <label for="wf-cron">Cron expression</label>
            <input id="wf-cron" required value={expression} onInput={(e) => setExpression((e.currentTarget as HTMLInputElement).value)} />
            <label for="wf-zone">Time zone</label>
            <input id="wf-zone" required value={timezone} onInput={(e) => setTimezone((e.currentTarget as HTMLInputElement).value)} />
            <span class="muted">Next runs</span>
            {typeof preview === "string"
              ? <p class="error" role="alert" data-testid="cron-preview">{preview}</p>
              : <ul class="preview" aria-live="polite" data-testid="cron-preview">{preview?.map((line) => <li>{line}</li>)}</ul>}
          </>
        )}
        <span />
        <button class="primary" type="submit">Create workflow</button>
      </form>
      {message !== undefined && <p role="status">{message}</p>}
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <table>
        <thead><tr><th scope="col">Title</th><th scope="col">Status</th><th scope="col">Next run</th><th scope="col">Latest run</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {workflows.map((workflow) => (
            <tr key={workflow.id}>
              <td>{workflow.title}</td>
              <td><span class="badge">{workflow.status}</span></td>
              <td>{workflow.nextRunAt === null ? "—" : when(workflow.nextRunAt)}</td>
              <td>
                {workflow.latestRunStatus ?? "—"}
                {workflow.latestRunSessionId !== null && <> · <a href={`/sessions/${workflow.latestRunSessionId}`} onClick={onLinkClick}>session</a></>}
              </td>
              <td class="row">
                <button type="button" onClick={() => void act(async () => {
                  await run(api.workflows.run({ params: { id: workflow.id } }))
                  return `Started “${workflow.title}”.`
                })}>Run now</button>
                {workflow.status === "paused"
                  ? <button type="button" onClick={() => void act(async () => void await run(api.workflows.resume({ params: { id: workflow.id } })))}>Resume</button>
                  : <button type="button" onClick={() => void act(async () => void await run(api.workflows.pause({ params: { id: workflow.id } })))}>Pause</button>}
                <button type="button" onClick={() => showRuns(workflow.id)}>Runs</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {workflows.length === 0 && <p class="muted">No workflows yet.</p>}
      {runs !== undefined && (
        <section class="card" aria-labelledby="runs-title">
          <h2 id="runs-title">Runs of “{workflows.find((w) => w.id === runs.workflowId)?.title ?? runs.workflowId}”</h2>
          <ul class="list">
            {runs.runs.map((r) => (
              <li key={r.id}>
                <span class="badge">{r.status}</span> {r.scheduledFor === null ? "manual" : when(r.scheduledFor)}
                {r.sessionId !== null && <> · <a href={`/sessions/${r.sessionId}`} onClick={onLinkClick}>session</a></>}
                {r.error !== null && <span class="error"> {r.error}</span>}
              </li>
            ))}
          </ul>
          {runs.runs.length === 0 && <p class="muted">No runs yet.</p>}
        </section>
      )}
    </section>
  )
}
