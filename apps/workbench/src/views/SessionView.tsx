import type { Artifact, Session, SessionEvent } from "@cowork/domain"
import { useEffect, useRef, useState } from "preact/hooks"
import { api, errorText, run } from "../api.ts"
import { rejectQuestion, replyQuestion, respondPermission } from "../asks.ts"
import { onLinkClick } from "../router.ts"
import { subscribe } from "../stream.ts"
import { apply, emptyTimeline, fromView, type Item, type Timeline } from "../timeline.ts"
import { when } from "./SessionList.tsx"

const json = (value: unknown) => (value === undefined ? "" : JSON.stringify(value, null, 2))

const readBase64 = (file: File): Promise<string> =>
  new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => {
      const url = String(reader.result)
      resolve(url.slice(url.indexOf(",") + 1))
    }
    reader.onerror = () => reject(reader.error)
    reader.readAsDataURL(file)
  })

const Ask = ({ sessionId, item, onError }: { readonly sessionId: string; readonly item: Item; readonly onError: (m: string) => void }) => {
  const [sending, setSending] = useState<string | undefined>()
  const [chosen, setChosen] = useState<ReadonlyArray<ReadonlyArray<string>>>([])
  const act = (label: string, action: () => Promise<void>) => {
    setSending(label)
    action().catch((failure) => {
      setSending(undefined)
      onError(errorText(failure))
    })
  }
  if (item.kind === "permission") {
    return (
      <div class="ask" role="group" aria-label={`Permission request: ${item.permission}`}>
        <p><strong>Permission requested:</strong> <code>{item.permission}</code>{item.patterns.length > 0 && <> on <code>{item.patterns.join(", ")}</code></>}</p>
        {item.answer !== undefined
          ? <p class="muted">Answered: {item.answer}</p>
          : sending !== undefined
          ? <p class="muted" role="status">Sent: {sending}</p>
          : (
            <div class="row">
              <button type="button" class="primary" onClick={() => act("once", () => respondPermission(sessionId, item.permissionId, "once"))}>Allow once</button>
              <button type="button" onClick={() => act("always", () => respondPermission(sessionId, item.permissionId, "always"))}>Always allow</button>
              <button type="button" class="danger" onClick={() => act("reject", () => respondPermission(sessionId, item.permissionId, "reject"))}>Reject</button>
            </div>
          )}
      </div>
    )
  }
  if (item.kind !== "question") return null
  const toggle = (index: number, label: string, multiple: boolean) => {
    const next = item.questions.map((_, i) => chosen[i] ?? [])
    const current = next[index]!
    next[index] = multiple ? (current.includes(label) ? current.filter((l) => l !== label) : [...current, label]) : [label]
    setChosen(next)
  }
  return (
    <div class="ask" role="group" aria-label="Question">
      {item.questions.map((question, index) => (
        <fieldset>
          <legend>{question.header !== undefined ? `${question.header}: ` : ""}{question.question}</legend>
          {question.options.map((option) => (
            <label class="option">
              <input type={question.multiple === true ? "checkbox" : "radio"} name={`${item.key}-${index}`}
                disabled={item.answer !== undefined || sending !== undefined}
                checked={(chosen[index] ?? []).includes(option.label)}
                onChange={() => toggle(index, option.label, question.multiple === true)} />
              {option.label}{option.description !== undefined && <span class="muted"> — {option.description}</span>}
            </label>
          ))}
        </fieldset>
      ))}
      {item.answer !== undefined
        ? <p class="muted">Answered: {item.answer}</p>
        : sending !== undefined
        ? <p class="muted" role="status">Sent: {sending}</p>
        : (
          <div class="row">
            <button type="button" class="primary"
              onClick={() => act("reply", () => replyQuestion(sessionId, item.requestId, item.questions.map((_, i) => chosen[i] ?? [])))}>
              Answer
            </button>
            <button type="button" onClick={() => act("declined", () => rejectQuestion(sessionId, item.requestId))}>Decline</button>
          </div>
        )}
    </div>
  )
}

const TimelineItem = ({ sessionId, item, onError }: { readonly sessionId: string; readonly item: Item; readonly onError: (m: string) => void }) => {
  switch (item.kind) {
    case "user":
      return <li class="msg user" data-seq={item.seq}><span class="who">You</span><div class="text">{item.text}</div></li>
    case "assistant":
      return (
        <li class={`msg assistant${item.final ? "" : " streaming"}`} data-seq={item.seq} data-message-key={item.key} aria-busy={!item.final}>
          <span class="who">Agent{item.incomplete === true ? " · incomplete" : ""}</span><div class="text">{item.text}</div>
        </li>
      )
    case "tool":
      return (
        <li class="msg tool" data-seq={item.seq}>
          <details>
            <summary>Tool <code>{item.tool}</code> · {item.status}</summary>
            <h4>Input</h4><pre>{json(item.input)}</pre>
            <h4>Output</h4><pre>{json(item.output)}</pre>
          </details>
        </li>
      )
    case "permission":
    case "question":
      return <li class="msg ask-item" data-seq={item.seq}><Ask key={item.seq} sessionId={sessionId} item={item} onError={onError} /></li>
    case "error":
      return <li class="msg error-item" data-seq={item.seq} role="alert">Error: {item.message}</li>
    case "note":
      return <li class={`msg note note-${item.tone}`} data-seq={item.seq}>{item.text}</li>
  }
}

export const SessionView = ({ id }: { readonly id: string }) => {
  const [session, setSession] = useState<Session | undefined>()
  const [timeline, setTimeline] = useState<Timeline>(emptyTimeline)
  const [connection, setConnection] = useState<"connecting" | "live" | "reconnecting">("connecting")
  const [error, setError] = useState<string | undefined>()
  const [text, setText] = useState("")
  const [artifacts, setArtifacts] = useState<ReadonlyArray<Artifact>>([])
  const [dragging, setDragging] = useState(false)
  const [uploading, setUploading] = useState(false)
  const timelineRef = useRef<Timeline>(emptyTimeline)
  const bottom = useRef<HTMLDivElement>(null)

  const update = (next: Timeline) => {
    timelineRef.current = next
    setTimeline(next)
  }

  useEffect(() => {
    let cancelled = false
    update(emptyTimeline)
    run(api.sessions.get({ params: { id } })).then(({ session }) => !cancelled && setSession(session), (f) => setError(errorText(f)))
    const stream = subscribe(`/api/sessions/${encodeURIComponent(id)}/events`, 0, {
      onState: setConnection,
      onFatal: (message) => setError(message),
      onFrame: (frame) => {
        if (frame.event === "snapshot.required") {
          // The cursor is older than the retained log: start again from the projected view.
          void run(api.sessions.view({ params: { id }, query: {} })).then((view) => {
            if (cancelled) return
            update(fromView(view))
            stream.resetTo(view.projectedSequence)
          }, (f) => setError(errorText(f)))
          return
        }
        const event = JSON.parse(frame.data) as SessionEvent
        update(apply(timelineRef.current, event))
      }
    })
    return () => {
      cancelled = true
      stream.close()
    }
  }, [id])

  const loadArtifacts = () =>
    run(api.artifacts.listForSession({ params: { id }, query: { limit: 100 } })).then((page) => setArtifacts(page.artifacts), (f) => setError(errorText(f)))

  useEffect(() => {
    void loadArtifacts()
  }, [id, timeline.artifactsVersion])

  useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: "end" })
  }, [timeline.items.length])

  const send = async () => {
    const prompt = text
    if (prompt.trim() === "") return
    setText("")
    try {
      await run(api.sessions.prompt({ params: { id }, payload: { text: prompt, idempotencyKey: crypto.randomUUID() } }))
    } catch (failure) {
      setText(prompt)
      setError(errorText(failure))
    }
  }

  const abort = async () => {
    try {
      await run(api.sessions.abort({ params: { id } }))
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  const upload = async (files: ReadonlyArray<File>) => {
    setUploading(true)
    try {
      for (const file of files) {
        await run(api.artifacts.upload({
          params: { id },
          query: {},
          payload: { filename: file.name, contentType: file.type === "" ? "application/octet-stream" : file.type, dataBase64: await readBase64(file) }
        }))
      }
      await loadArtifacts()
    } catch (failure) {
      setError(errorText(failure))
    } finally {
      setUploading(false)
    }
  }

  const [tagsText, setTagsText] = useState("")
  const [savedTags, setSavedTags] = useState<ReadonlyArray<string> | undefined>()
  const saveTags = async (event: Event) => {
    event.preventDefault()
    const tags = tagsText.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== "")
    try {
      const { thread } = await run(api.threads.update({ params: { id }, payload: { tags } }))
      setSavedTags(thread.tags)
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  const status = timeline.status ?? session?.status
  const busy = status === "running" || status === "queued"

  return (
    <section class="session" aria-labelledby="session-title">
      <p><a href="/sessions" onClick={onLinkClick}>← Sessions</a></p>
      <div class="row spread">
        <h1 id="session-title">{session === undefined ? "Session" : session.title === "" ? "Untitled session" : session.title}</h1>
        <div class="row">
          {status !== undefined && <span class={`badge status-${status}`} data-testid="session-status">{status}</span>}
          <span class={`badge conn-${connection}`} role="status" aria-live="polite">{connection === "live" ? "live" : connection === "connecting" ? "connecting…" : "reconnecting…"}</span>
        </div>
      </div>
      <form class="row tags-form" onSubmit={saveTags}>
        <label for="session-tags">Tags</label>
        <input id="session-tags" value={tagsText} placeholder="comma separated, e.g. billing, urgent"
          onInput={(e) => setTagsText((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit">Save tags</button>
        {savedTags !== undefined && <span class="muted" role="status">Tags: {savedTags.length === 0 ? "none" : savedTags.map((t) => `#${t}`).join(" ")}</span>}
      </form>
      {error !== undefined && (
        <p class="error" role="alert">{error} <button type="button" class="link" onClick={() => setError(undefined)}>Dismiss</button></p>
      )}
      <ol class="timeline" aria-label="Conversation" aria-live="polite">
        {timeline.items.map((item) => <TimelineItem key={item.key} sessionId={id} item={item} onError={setError} />)}
      </ol>
      <div ref={bottom} />
      <form class="prompt" onSubmit={(e) => {
        e.preventDefault()
        void send()
      }}>
        <label for="prompt-text">Prompt</label>
        <textarea id="prompt-text" rows={3} value={text} disabled={status === "aborted"} placeholder="Ask the agent… (Enter sends, Shift+Enter for a new line)"
          onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault()
              void send()
            }
          }} />
        <div class="row">
          <button class="primary" type="submit" disabled={status === "aborted"}>Send</button>
          {busy && <button type="button" class="danger" onClick={abort}>Abort</button>}
        </div>
      </form>
      <section class={`artifacts${dragging ? " dragging" : ""}`} aria-labelledby="artifacts-title"
        onDragOver={(e) => {
          e.preventDefault()
          setDragging(true)
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault()
          setDragging(false)
          const files = [...(e.dataTransfer?.files ?? [])]
          if (files.length > 0) void upload(files)
        }}>
        <h2 id="artifacts-title">Artifacts</h2>
        <p class="muted">Drop files here, or choose them: <label class="button" for="artifact-file">Upload files</label></p>
        <input id="artifact-file" class="sr-only" type="file" multiple onChange={(e) => {
          const input = e.currentTarget as HTMLInputElement
          const files = [...(input.files ?? [])]
          input.value = ""
          if (files.length > 0) void upload(files)
        }} />
        {uploading && <p role="status">Uploading…</p>}
        <ul class="list" aria-label="Artifacts">
          {artifacts.map((artifact) => (
            <li key={artifact.id}>
              <a href={`/api/sessions/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(artifact.id)}`} download={artifact.name}>{artifact.name}</a>
              <span class="muted small">{artifact.contentType} · {artifact.sizeBytes} bytes · {when(artifact.createdAt)}</span>
            </li>
          ))}
        </ul>
        {artifacts.length === 0 && <p class="muted">No artifacts yet.</p>}
      </section>
    </section>
  )
}
