import type { Session, SessionStatus } from "@cowork/domain"
import { useEffect, useRef, useState } from "preact/hooks"
import { api, errorText, run } from "../api.ts"
import { navigate, onLinkClick } from "../router.ts"
import { subscribe } from "../stream.ts"

const PAGE = 20
const STATUSES: ReadonlyArray<SessionStatus> = ["idle", "queued", "running", "aborted"]

export const when = (iso: string) => new Date(iso).toLocaleString()

/**
 * Sessions: search (`q`), status filter, keyset pages loaded as the end of the list scrolls into view (or with the
 * button), a form to create one, and live updates from `GET /api/events`.
 */
export const SessionList = () => {
  const [q, setQ] = useState("")
  const [status, setStatus] = useState<SessionStatus | "">("")
  const [sessions, setSessions] = useState<ReadonlyArray<Session>>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [total, setTotal] = useState<number | undefined>()
  const [loading, setLoading] = useState(false)
  const [error, setError] = useState<string | undefined>()
  const [title, setTitle] = useState("")
  const sentinel = useRef<HTMLDivElement>(null)
  const generation = useRef(0)
  const filters = useRef({ q, status })
  filters.current = { q, status }

  const load = async (reset: boolean, after: string | null) => {
    const mine = reset ? ++generation.current : generation.current
    setLoading(true)
    try {
      const page = await run(api.sessions.list({
        query: {
          limit: PAGE,
          ...(after === null ? {} : { cursor: after }),
          ...(filters.current.q.trim() === "" ? {} : { q: filters.current.q.trim() }),
          ...(filters.current.status === "" ? {} : { status: filters.current.status })
        }
      }))
      if (mine !== generation.current) return
      setSessions((current) => {
        const base = reset ? [] : current
        const seen = new Set(base.map((s) => s.id))
        return [...base, ...page.sessions.filter((s) => !seen.has(s.id))]
      })
      setCursor(page.nextCursor)
      setTotal(page.totalEstimate)
      setError(undefined)
    } catch (failure) {
      if (mine === generation.current) setError(errorText(failure))
    } finally {
      if (mine === generation.current) setLoading(false)
    }
  }

  useEffect(() => {
    const timer = setTimeout(() => void load(true, null), 200)
    return () => clearTimeout(timer)
  }, [q, status])

  // The next keyset page when the end of the list comes into view.
  useEffect(() => {
    const element = sentinel.current
    if (element === null || cursor === null) return
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting) && !loading) void load(false, cursor)
    }, { rootMargin: "0px 0px 200px 0px" })
    observer.observe(element)
    return () => observer.disconnect()
  }, [cursor, loading])

  // Live: a changed session is read again and moved to the top when it still matches the filters.
  useEffect(() => {
    const stream = subscribe("/api/events", 0, {
      onFrame: (frame) => {
        if (frame.event !== "session.changed") return
        const { sessionId } = JSON.parse(frame.data) as { sessionId: string }
        void run(api.sessions.get({ params: { id: sessionId } })).then(({ session }) => {
          const { q: query, status: wanted } = filters.current
          const matches = (wanted === "" || session.status === wanted) &&
            (query.trim() === "" || session.title.toLowerCase().includes(query.trim().toLowerCase()))
          setSessions((current) => {
            const rest = current.filter((s) => s.id !== session.id)
            return matches ? [session, ...rest] : rest
          })
        }, () => undefined)
      }
    })
    return stream.close
  }, [])

  const create = async (event: Event) => {
    event.preventDefault()
    try {
      const { session } = await run(api.sessions.create({ payload: title.trim() === "" ? {} : { title: title.trim() } }))
      setTitle("")
      navigate(`/sessions/${encodeURIComponent(session.id)}`)
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  return (
    <section aria-labelledby="sessions-title">
      <div class="row spread">
        <h1 id="sessions-title">Sessions</h1>
        <form class="row" onSubmit={create} aria-label="New session">
          <label class="sr-only" for="new-title">Title of the new session</label>
          <input id="new-title" placeholder="Title (optional)" value={title} maxLength={200}
            onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
          <button class="primary" type="submit">New session</button>
        </form>
      </div>
      <div class="row filters" role="search">
        <label for="session-q">Search</label>
        <input id="session-q" type="search" value={q} placeholder="Title contains…" maxLength={200}
          onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)} />
        <label for="session-status">Status</label>
        <select id="session-status" value={status} onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value as SessionStatus | "")}>
          <option value="">Any</option>
          {STATUSES.map((s) => <option value={s}>{s}</option>)}
        </select>
        {total !== undefined && <span class="muted">≈ {total} sessions</span>}
      </div>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <ul class="list" aria-label="Sessions" aria-busy={loading}>
        {sessions.map((session) => (
          <li key={session.id} data-session-id={session.id}>
            <a href={`/sessions/${encodeURIComponent(session.id)}`} onClick={onLinkClick}>
              <span class="title">{session.title === "" ? "Untitled session" : session.title}</span>
              <span class={`badge status-${session.status}`}>{session.status}</span>
              <span class="muted small">{when(session.updatedAt)}</span>
            </a>
          </li>
        ))}
      </ul>
      {sessions.length === 0 && !loading && <p class="muted">No sessions yet.</p>}
      <div class="sentinel" ref={sentinel} aria-hidden="true" />
      {cursor !== null && (
        <button type="button" disabled={loading} onClick={() => void load(false, cursor)}>{loading ? "Loading…" : "Load more"}</button>
      )}
    </section>
  )
}
