import type { SessionStatus, SmartFilter, SmartFilterId } from "@cowork/domain"
import { useEffect, useRef, useState } from "preact/hooks"
import { api, errorText, run } from "../api.ts"
import { navigate, onLinkClick } from "../router.ts"
import { subscribe } from "../stream.ts"

const PAGE = 20
const STATUSES: ReadonlyArray<SessionStatus> = ["idle", "queued", "running", "aborted"]

export const when = (iso: string) => new Date(iso).toLocaleString()

/** A row of the list: a session, with its tags when the threads view listed it. */
interface Row {
  readonly id: string
  readonly title: string
  readonly status: SessionStatus
  readonly updatedAt: string
  readonly tags?: ReadonlyArray<string>
}

/**
 * Sessions: search (`q`), status filter, the threads views (smart filters with their counts, tags), keyset pages
 * loaded as the end of the list scrolls into view (or with the button), a form to create one, and live updates from
 * `GET /api/events`. A smart filter or a tag lists through `GET /api/threads`; otherwise `GET /api/sessions`.
 */
export const SessionList = () => {
  const [q, setQ] = useState("")
  const [status, setStatus] = useState<SessionStatus | "">("")
  const [smart, setSmart] = useState<SmartFilterId | "">("")
  const [tag, setTag] = useState("")
  const [smartFilters, setSmartFilters] = useState<ReadonlyArray<SmartFilter>>([])
  const [tags, setTags] = useState<ReadonlyArray<{ readonly tag: string; readonly count: number }>>([])
  const [sessions, setSessions] = useState<ReadonlyArray<Row>>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [total, setTotal] = useState<number | undefined>()
  const [loading, setLoading] = useState(false)
  const [error, setError] = useState<string | undefined>()
  const [title, setTitle] = useState("")
  const sentinel = useRef<HTMLDivElement>(null)
  const generation = useRef(0)
  const filters = useRef({ q, status, smart, tag })
  filters.current = { q, status, smart, tag }

  const loadViews = () => {
    void run(api.threads.smartFilters()).then((r) => setSmartFilters(r.filters), () => undefined)
    void run(api.threads.tags()).then((r) => setTags(r.tags), () => undefined)
  }

  const load = async (reset: boolean, after: string | null) => {
    const mine = reset ? ++generation.current : generation.current
    setLoading(true)
    try {
      const { q: query, status: wanted, smart: filter, tag: chosen } = filters.current
      const common = {
        limit: PAGE,
        ...(after === null ? {} : { cursor: after }),
        ...(query.trim() === "" ? {} : { q: query.trim() })
      }
      const page: { readonly rows: ReadonlyArray<Row>; readonly nextCursor: string | null; readonly totalEstimate: number } =
        filter !== "" || chosen !== ""
          ? await run(api.threads.list({ query: { ...common, ...(filter === "" ? {} : { filter }), ...(chosen === "" ? {} : { tag: chosen }) } }))
            .then((r) => ({ rows: r.threads, nextCursor: r.nextCursor, totalEstimate: r.totalEstimate }))
          : await run(api.sessions.list({ query: { ...common, ...(wanted === "" ? {} : { status: wanted }) } }))
            .then((r) => ({ rows: r.sessions, nextCursor: r.nextCursor, totalEstimate: r.totalEstimate }))
      if (mine !== generation.current) return
      setSessions((current) => {
        const base = reset ? [] : current
        const seen = new Set(base.map((s) => s.id))
        return [...base, ...page.rows.filter((s) => !seen.has(s.id))]
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
  }, [q, status, smart, tag])

  useEffect(loadViews, [])

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
          const { q: query, status: wanted, smart: filter, tag: chosen } = filters.current
          // A filtered threads view is read again instead: its rules (mine, recent, tags) live on the server.
          if (filter !== "" || chosen !== "") return void load(true, null)
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
        <select id="session-status" value={status} disabled={smart !== "" || tag !== ""} title={smart !== "" || tag !== "" ? "not combined with a smart filter or tag" : undefined} onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value as SessionStatus | "")}>
          <option value="">Any</option>
          {STATUSES.map((s) => <option value={s}>{s}</option>)}
        </select>
        {tags.length > 0 && (
          <>
            <label for="session-tag">Tag</label>
            <select id="session-tag" value={tag} onChange={(e) => setTag((e.currentTarget as HTMLSelectElement).value)}>
              <option value="">Any</option>
              {tags.map((t) => <option value={t.tag}>{t.tag} ({t.count})</option>)}
            </select>
          </>
        )}
        {total !== undefined && <span class="muted">≈ {total} sessions</span>}
      </div>
      {smartFilters.length > 0 && (
        <div class="row chips" role="group" aria-label="Smart filters">
          {smartFilters.map((f) => (
            <button type="button" class={smart === f.id ? "chip on" : "chip"} aria-pressed={smart === f.id} title={f.description}
              onClick={() => {
                setSmart(smart === f.id ? "" : f.id)
                loadViews()
              }}>
              {f.title} <span class="count">{f.count}</span>
            </button>
          ))}
        </div>
      )}
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <ul class="list" aria-label="Sessions" aria-busy={loading}>
        {sessions.map((session) => (
          <li key={session.id} data-session-id={session.id}>
            <a href={`/sessions/${encodeURIComponent(session.id)}`} onClick={onLinkClick}>
              <span class="title">{session.title === "" ? "Untitled session" : session.title}</span>
              {session.tags?.map((t) => <span class="badge tag">#{t}</span>)}
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
