import { useState } from "preact/hooks"
import { api, type Bootstrap, errorText, run, setCsrfToken } from "../api.ts"

/**
 * Sign-in. With an identity provider: a link to `/auth/login`. In local mode: the owner token `cowork up` printed,
 * exchanged once for a browser session cookie (`POST /auth/token-login`); the field is cleared at once and the
 * token is kept nowhere.
 */
export const SignIn = ({ bootstrap, onSignedIn }: { readonly bootstrap: Bootstrap; readonly onSignedIn: () => Promise<void> }) => {
  const [token, setToken] = useState("")
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>()

  const submit = async (event: Event) => {
    event.preventDefault()
    const presented = token.trim()
    setToken("")
    setBusy(true)
    setError(undefined)
    try {
      const started = await run(api.tokenLogin({ payload: { token: presented } }))
      setCsrfToken(started.csrfToken)
      await onSignedIn()
    } catch (failure) {
      setError(errorText(failure))
    } finally {
      setBusy(false)
    }
  }

  return (
    <section class="card narrow" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in</h1>
      {bootstrap.loginUrl !== null && (
        <p><a class="button primary" href={`${bootstrap.loginUrl}?returnTo=${encodeURIComponent("/sessions")}`}>Sign in with your identity provider</a></p>
      )}
      {bootstrap.tokenLoginUrl !== null && (
        <form onSubmit={submit}>
          <label for="owner-token">Owner token</label>
          <p class="muted" id="owner-token-help">
            The token <code>cowork up</code> printed on its first start. It is exchanged once for a browser session and not kept.
          </p>
          <input id="owner-token" name="token" type="password" autoComplete="off" required value={token}
            aria-describedby="owner-token-help" onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)} />
          <button class="primary" type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
        </form>
      )}
      {bootstrap.loginUrl === null && bootstrap.tokenLoginUrl === null && <p>No sign-in method is enabled on this server.</p>}
      {error !== undefined && <p class="error" role="alert">{error}</p>}
    </section>
  )
}
