import type { Client } from "@cowork/client"
import { type AuditEvent, type ChannelDelivery, type DeliveryStatus, type Diagnostics, type RegisteredWorker, type WorkerAction, workerTransitions } from "@cowork/domain"
import { useEffect, useState } from "preact/hooks"
import { errorText, operatorClient, run } from "../api.ts"
import { when } from "./SessionList.tsx"

type Heartbeat = Diagnostics["heartbeats"][number]
type Lifecycle = WorkerAction
const ACTIONS: ReadonlyArray<Lifecycle> = ["activate", "pause", "drain", "resume", "retire", "revoke"]
const REFRESH_MS = 5_000

const DELIVERY_STATUSES: ReadonlyArray<DeliveryStatus> = ["pending", "claimed", "sent", "failed", "dead"]

interface Deliveries {
  readonly counts: Readonly<Record<DeliveryStatus, number>>
  readonly shown: ReadonlyArray<ChannelDelivery>
}

interface Snapshot {
  readonly diagnostics: Diagnostics
  readonly workers: ReadonlyArray<RegisteredWorker> | string
  readonly audit: ReadonlyArray<AuditEvent> | string
  readonly deliveries: Deliveries | string
}

/**
 * The operator page. Operator routes never accept a browser session, so the operator pastes an operator token; it
 * lives in this component's memory only (no storage, no URL, no cookie) and is gone when the page is closed or
 * reloaded. Everything shown comes from the existing operator routes, read again every 5 s.
 */
export const OperatorView = () => {
  const [client, setClient] = useState<Client | undefined>()
  const [draft, setDraft] = useState("")
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>()
  const [error, setError] = useState<string | undefined>()
  const [message, setMessage] = useState<string | undefined>()
  const [deliveryStatus, setDeliveryStatus] = useState<DeliveryStatus>("failed")

  /** Gateway deliveries of the token's org (`/api/channels/deliveries`, admin scope): counts by status, one status listed. */
  const readDeliveries = async (c: Client, status: DeliveryStatus): Promise<Deliveries> => {
    const pages = await Promise.all(DELIVERY_STATUSES.map((s) => run(c.channels.listDeliveries({ query: { status: s, limit: s === status ? 50 : 1 } }))))
    const counts = Object.fromEntries(DELIVERY_STATUSES.map((s, i) => [s, pages[i]!.totalEstimate])) as Record<DeliveryStatus, number>
    return { counts, shown: pages[DELIVERY_STATUSES.indexOf(status)]!.deliveries }
  }

  const refresh = async (c: Client, status: DeliveryStatus = deliveryStatus) => {
    try {
      const diagnostics = await run(c.operator.diagnostics())
      const workers = await run(c.workerAdmin.listWorkers()).then((r) => r.workers, (f) => errorText(f))
      const audit = await run(c.audit.list({ query: { limit: 20 } })).then((r) => r.events, (f) => `audit log: ${errorText(f)}`)
      const deliveries = await readDeliveries(c, status).catch((f) => `deliveries: ${errorText(f)}`)
      setSnapshot({ diagnostics, workers, audit, deliveries })
      setError(undefined)
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  useEffect(() => {
    if (client === undefined) return
    void refresh(client)
    const timer = setInterval(() => void refresh(client, deliveryStatus), REFRESH_MS)
    return () => clearInterval(timer)
  }, [client, deliveryStatus])

  if (client === undefined) {
    return (
      <section class="card narrow" aria-labelledby="operator-title">
        <h1 id="operator-title">Operator</h1>
        <p class="muted">Operator routes need an operator token (a browser session is never accepted). The token stays in this page's memory only.</p>
        <form onSubmit={async (e) => {
          e.preventDefault()
          const token = draft.trim()
          setDraft("")
          const c = await operatorClient(token)
          try {
            await run(c.operator.runtimeStatus())
            setClient(c)
          } catch (failure) {
            setError(errorText(failure))
          }
        }}>
          <label for="operator-token">Operator token</label>
          <input id="operator-token" type="password" autoComplete="off" required value={draft} onInput={(e) => setDraft((e.currentTarget as HTMLInputElement).value)} />
          <button class="primary" type="submit">Open</button>
        </form>
        {error !== undefined && <p class="error" role="alert">{error}</p>}
      </section>
    )
  }

  const lifecycle = async (workerId: string, action: Lifecycle) => {
    try {
      const endpoint = client.workerAdmin[action] as (request: { readonly params: { readonly id: string } }) => Parameters<typeof run>[0]
      await run(endpoint({ params: { id: workerId } }))
      setMessage(`${action}: ${workerId}`)
      await refresh(client)
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  const deliveryAction = async (id: string, action: "retry" | "dead-letter") => {
    try {
      if (action === "retry") await run(client.channels.retryDelivery({ params: { id } }))
      else await run(client.channels.deadLetterDelivery({ params: { id }, payload: { reason: "dead-lettered from the operator page" } }))
      setMessage(`${action}: ${id}`)
      await refresh(client)
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  const d = snapshot?.diagnostics
  return (
    <section aria-labelledby="operator-title">
      <div class="row spread">
        <h1 id="operator-title">Operator</h1>
        <div class="row">
          <button type="button" onClick={() => void refresh(client)}>Refresh</button>
          <button type="button" onClick={() => {
            setClient(undefined)
            setSnapshot(undefined)
          }}>Forget token</button>
        </div>
      </div>
      {message !== undefined && <p role="status">{message}</p>}
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      {d === undefined ? <p class="muted" role="status">Loading…</p> : (
        <>
          <div class="stats">
            <div class="stat"><span class="label">Role</span><span class="value">{d.runtime.role}</span></div>
            <div class="stat"><span class="label">Can execute</span><span class="value">{d.runtime.canExecute ? "yes" : "no"}</span></div>
            <div class="stat"><span class="label">Fresh workers</span><span class="value">{d.runtime.heartbeats.freshWorkers} / {d.runtime.heartbeats.workers}</span></div>
            <div class="stat"><span class="label">Queue depth</span><span class="value" data-testid="queue-depth">{d.queues.depthEstimate}{d.queues.depthCapped ? "+" : ""}</span></div>
            <div class="stat"><span class="label">Oldest command</span><span class="value">{Math.round(d.queues.oldestCommandAgeMs / 1000)} s</span></div>
            <div class="stat"><span class="label">Projection lag</span><span class="value">{d.queues.maxProjectionLagEvents} events</span></div>
            <div class="stat"><span class="label">Leases held</span><span class="value">{d.leases.held}</span></div>
            <div class="stat"><span class="label">Expired, unreaped</span><span class="value">{d.leases.expiredUnreaped}</span></div>
          </div>
          <h2>Lease counters (this process)</h2>
          <dl class="counters">
            {Object.entries(d.leases.counters).map(([name, value]) => <><dt>{name}</dt><dd>{value}</dd></>)}
          </dl>
          <h2>Heartbeats</h2>
          <table aria-label="Heartbeats">
            <thead><tr><th scope="col">Id</th><th scope="col">Role</th><th scope="col">Pool</th><th scope="col">Status</th><th scope="col">Load</th><th scope="col">Active</th><th scope="col">Age</th></tr></thead>
            <tbody>
              {d.heartbeats.map((beat: Heartbeat) => (
                <tr key={beat.workerId} data-worker-id={beat.workerId}>
                  <td><code>{beat.workerId}</code></td>
                  <td>{beat.role}</td>
                  <td>{beat.poolId ?? "—"}</td>
                  <td><span class={`badge ${beat.fresh ? "ok" : "stale"}`}>{beat.status}{beat.fresh ? "" : " (stale)"}</span></td>
                  <td>{beat.currentLoad}</td>
                  <td>{beat.activeWorkIds.length}</td>
                  <td>{Math.round(beat.ageMs / 1000)} s</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Registered workers</h2>
          {typeof snapshot!.workers === "string" ? <p class="muted">{snapshot!.workers}</p> : (
            <table aria-label="Registered workers">
              <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Health</th><th scope="col">Last heartbeat</th><th scope="col"><span class="sr-only">Lifecycle</span></th></tr></thead>
              <tbody>
                {snapshot!.workers.map((worker) => (
                  <tr key={worker.id}>
                    <td>{worker.name} <code class="small">{worker.id}</code></td>
                    <td>{worker.status}</td>
                    <td>{worker.health}</td>
                    <td>{worker.lastHeartbeatAt === null ? "never" : when(worker.lastHeartbeatAt)}</td>
                    <td class="row">
                      {ACTIONS.filter((action) => workerTransitions[action].from.includes(worker.status)).map((action) => (
                        <button type="button" class={action === "revoke" ? "danger" : ""} aria-label={`${action} ${worker.name}`}
                          onClick={() => void lifecycle(worker.id, action)}>{action}</button>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {typeof snapshot!.workers !== "string" && snapshot!.workers.length === 0 && <p class="muted">No registered (managed) workers.</p>}
          <h2>Audit log</h2>
          {typeof snapshot!.audit === "string" ? <p class="muted">{snapshot!.audit}</p> : (
            <ul class="list" aria-label="Audit log">
              {snapshot!.audit.map((event) => (
                <li key={event.id}><span class="muted small">{when(event.at)}</span> <code>{event.action}</code> {event.actor}{event.target !== null && <> → {event.target}</>}</li>
              ))}
            </ul>
          )}
          <h2>Gateway deliveries</h2>
          {typeof snapshot!.deliveries === "string" ? <p class="muted">{snapshot!.deliveries}</p> : (
            <>
              <div class="stats" aria-label="Deliveries by status">
                {DELIVERY_STATUSES.map((s) => (
                  <div class="stat"><span class="label">{s}</span><span class="value" data-testid={`deliveries-${s}`}>{(snapshot!.deliveries as Deliveries).counts[s]}</span></div>
                ))}
              </div>
              <div class="row filters">
                <label for="delivery-status">Show</label>
                <select id="delivery-status" value={deliveryStatus} onChange={(e) => setDeliveryStatus((e.currentTarget as HTMLSelectElement).value as DeliveryStatus)}>
                  {DELIVERY_STATUSES.map((s) => <option value={s}>{s}</option>)}
                </select>
              </div>
              <table aria-label="Deliveries">
                <thead><tr><th scope="col">Delivery</th><th scope="col">Channel</th><th scope="col">Kind</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
                <tbody>
                  {snapshot!.deliveries.shown.map((delivery) => (
                    <tr key={delivery.id} data-delivery-id={delivery.id}>
                      <td><code class="small">{delivery.id}</code> <span class="badge">{delivery.status}</span></td>
                      <td>{delivery.providerKind} · {delivery.externalTarget}</td>
                      <td>{delivery.kind}</td>
                      <td>{delivery.attempts} / {delivery.maxAttempts}</td>
                      <td>{delivery.lastError ?? "—"}</td>
                      <td class="row">
                        {(delivery.status === "failed" || delivery.status === "dead") && (
                          <button type="button" aria-label={`Retry ${delivery.id}`} onClick={() => void deliveryAction(delivery.id, "retry")}>Retry</button>
                        )}
                        {delivery.status !== "sent" && delivery.status !== "dead" && (
                          <button type="button" class="danger" aria-label={`Dead-letter ${delivery.id}`} onClick={() => void deliveryAction(delivery.id, "dead-letter")}>Dead-letter</button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {snapshot!.deliveries.shown.length === 0 && <p class="muted">No {deliveryStatus} deliveries.</p>}
            </>
          )}
        </>
      )}
    </section>
  )
}
