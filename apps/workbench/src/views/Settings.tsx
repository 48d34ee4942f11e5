import type { ApiTokenView, ByokKey, TokenScope, Workspace } from "@cowork/domain"
import { useEffect, useState } from "preact/hooks"
import { api, errorText, run } from "../api.ts"
import { when } from "./SessionList.tsx"

const SCOPES: ReadonlyArray<TokenScope> = ["web", "admin"]

/** API tokens: create (the secret is shown once, in this component's memory only), list, revoke. */
const ApiTokens = () => {
  const [tokens, setTokens] = useState<ReadonlyArray<ApiTokenView>>([])
  const [name, setName] = useState("")
  const [scopes, setScopes] = useState<ReadonlyArray<TokenScope>>(["web"])
  const [secret, setSecret] = useState<string | undefined>()
  const [error, setError] = useState<string | undefined>()
  const load = () => run(api.apiTokens.list()).then((r) => setTokens(r.tokens), (f) => setError(errorText(f)))
  useEffect(() => void load(), [])

  const create = async (event: Event) => {
    event.preventDefault()
    try {
      const issued = await run(api.apiTokens.create({ payload: { name: name.trim(), scopes } }))
      setSecret(issued.secret)
      setName("")
      await load()
    } catch (failure) {
      setError(errorText(failure))
    }
  }
  const revoke = async (id: string) => {
    try {
      await run(api.apiTokens.revoke({ params: { id } }))
      await load()
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  return (
    <section class="card" aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      <form class="row" onSubmit={create}>
        <label for="token-name">Name</label>
        <input id="token-name" required maxLength={100} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        <fieldset class="row inline">
          <legend class="sr-only">Scopes</legend>
          {SCOPES.map((scope) => (
            <label class="option">
              <input type="checkbox" checked={scopes.includes(scope)}
                onChange={() => setScopes(scopes.includes(scope) ? scopes.filter((s) => s !== scope) : [...scopes, scope])} />
              {scope}
            </label>
          ))}
        </fieldset>
        <button class="primary" type="submit" disabled={scopes.length === 0}>Create token</button>
      </form>
      {secret !== undefined && (
        <div class="secret" role="status">
          <p><strong>Copy this token now; it is not shown again.</strong></p>
          <input aria-label="New token secret" readOnly value={secret} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
          <button type="button" onClick={() => setSecret(undefined)}>Done</button>
        </div>
      )}
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {tokens.map((token) => (
            <tr key={token.id}>
              <td>{token.name}</td>
              <td>{token.scopes.join(", ")}</td>
              <td>{when(token.createdAt)}</td>
              <td>{token.lastUsedAt === null ? "never" : when(token.lastUsedAt)}</td>
              <td>{token.revokedAt !== null ? "revoked" : token.expiresAt !== null ? `expires ${when(token.expiresAt)}` : "active"}</td>
              <td>{token.revokedAt === null && <button type="button" class="danger" onClick={() => void revoke(token.id)} aria-label={`Revoke ${token.name}`}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

/** Provider keys (BYOK): metadata only; the key typed in is sent once and the field cleared. */
const Byok = () => {
  const [keys, setKeys] = useState<ReadonlyArray<ByokKey>>([])
  const [provider, setProvider] = useState("openai")
  const [apiKey, setApiKey] = useState("")
  const [baseUrl, setBaseUrl] = useState("")
  const [message, setMessage] = useState<string | undefined>()
  const [error, setError] = useState<string | undefined>()
  const load = () => run(api.byok.list()).then((r) => setKeys(r.keys), (f) => setError(errorText(f)))
  useEffect(() => void load(), [])

  const store = async (event: Event) => {
    event.preventDefault()
    const key = apiKey
    setApiKey("")
    try {
      await run(api.byok.store({ params: { provider: provider.trim() }, payload: baseUrl.trim() === "" ? { apiKey: key } : { apiKey: key, baseUrl: baseUrl.trim() } }))
      setMessage(`Stored the ${provider} key.`)
      await load()
    } catch (failure) {
      setError(errorText(failure))
    }
  }
  const act = async (action: () => Promise<string>) => {
    try {
      setMessage(await action())
      setError(undefined)
      await load()
    } catch (failure) {
      setError(errorText(failure))
    }
  }

  return (
    <section class="card" aria-labelledby="byok-title">
      <h2 id="byok-title">Provider keys (BYOK)</h2>
      <form class="grid" onSubmit={store}>
        <label for="byok-provider">Provider</label>
        <input id="byok-provider" required pattern="[a-z0-9][a-z0-9_\-]{0,31}" value={provider} onInput={(e) => setProvider((e.currentTarget as HTMLInputElement).value)} />
        <label for="byok-key">API key</label>
        <input id="byok-key" type="password" autoComplete="off" required minLength={8} value={apiKey} onInput={(e) => setApiKey((e.currentTarget as HTMLInputElement).value)} />
        <label for="byok-base">Base URL (optional)</label>
        <input id="byok-base" type="url" value={baseUrl} placeholder="https://…/v1" onInput={(e) => setBaseUrl((e.currentTarget as HTMLInputElement).value)} />
        <span />
        <button class="primary" type="submit">Add or rotate key</button>
      </form>
      {message !== undefined && <p role="status">{message}</p>}
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <table>
        <thead><tr><th scope="col">Provider</th><th scope="col">Key</th><th scope="col">Fingerprint</th><th scope="col">Health</th><th scope="col">Updated</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {keys.map((key) => (
            <tr key={key.provider}>
              <td>{key.provider}</td>
              <td>…{key.last4}</td>
              <td><code>{key.fingerprint}</code></td>
              <td>{key.health}</td>
              <td>{when(key.updatedAt)}</td>
              <td class="row">
                <button type="button" onClick={() => void act(async () => {
                  const result = await run(api.byok.validate({ params: { provider: key.provider } }))
                  return `${key.provider}: ${result.ok ? "valid" : "failed"} — ${result.message}`
                })}>Validate</button>
                <button type="button" class="danger" aria-label={`Remove the ${key.provider} key`} onClick={() => void act(async () => {
                  await run(api.byok.remove({ params: { provider: key.provider } }))
                  return `Removed the ${key.provider} key.`
                })}>Remove</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {keys.length === 0 && <p class="muted">No provider keys stored.</p>}
    </section>
  )
}

export const SettingsView = ({ workspace }: { readonly workspace: Workspace }) => {
  const admin = workspace.scopes.includes("admin")
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      {admin ? <><ApiTokens /><Byok /></> : <p class="muted">API tokens and provider keys need the admin role.</p>}
    </section>
  )
}
