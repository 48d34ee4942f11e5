import type { Workspace } from "@cowork/domain"
import { useEffect, useState } from "preact/hooks"
import { api, errorText, onUnauthorized, readBootstrap, run, setCsrfToken } from "./api.ts"
import { navigate, onLinkClick, usePath } from "./router.ts"
import { OperatorView } from "./views/Operator.tsx"
import { SessionList } from "./views/SessionList.tsx"
import { SessionView } from "./views/SessionView.tsx"
import { SettingsView } from "./views/Settings.tsx"
import { SignIn } from "./views/SignIn.tsx"
import { WorkflowsView } from "./views/Workflows.tsx"

const bootstrap = readBootstrap()

type Auth = { readonly state: "loading" } | { readonly state: "signed-out" } | { readonly state: "signed-in"; readonly workspace: Workspace }

const NAV: ReadonlyArray<readonly [string, string]> = [
  ["/sessions", "Sessions"],
  ["/workflows", "Workflows"],
  ["/settings", "Settings"],
  ["/operator", "Operator"]
]

export const App = () => {
  const path = usePath()
  const [auth, setAuth] = useState<Auth>({ state: "loading" })
  const [error, setError] = useState<string | undefined>()

  const loadWorkspace = async () => {
    try {
      const workspace = await run(api.workspace.workspace())
      setCsrfToken(workspace.csrfToken ?? undefined)
      setAuth({ state: "signed-in", workspace })
    } catch (failure) {
      setCsrfToken(undefined)
      setAuth({ state: "signed-out" })
      if ((failure as { status?: number }).status !== 401) setError(errorText(failure))
    }
  }

  useEffect(() => {
    if (bootstrap.sessionCookie) void loadWorkspace()
    else setAuth({ state: "signed-out" })
    return onUnauthorized(() => {
      setCsrfToken(undefined)
      setAuth({ state: "signed-out" })
    })
  }, [])

  const signOut = async () => {
    try {
      await run(api.logout({ query: {} }))
    } finally {
      setCsrfToken(undefined)
      // A full load drops every bit of in-memory state (lists, streams, the CSRF token) with the cookie.
      window.location.assign("/sign-in")
    }
  }

  useEffect(() => {
    if (auth.state === "signed-in" && path === "/sign-in") navigate("/sessions")
  }, [auth.state, path])

  const operatorPage = path === "/operator" || path.startsWith("/operator/")
  const signedIn = auth.state === "signed-in"

  let main
  if (operatorPage) main = <OperatorView />
  else if (auth.state === "loading") main = <p class="muted" role="status">Loading…</p>
  else if (auth.state === "signed-out") {
    main = <SignIn bootstrap={bootstrap} onSignedIn={loadWorkspace} />
  } else {
    const session = /^\/sessions\/([^/]+)$/.exec(path)
    if (session !== null) main = <SessionView id={decodeURIComponent(session[1]!)} />
    else if (path === "/workflows" || path.startsWith("/workflows/")) main = <WorkflowsView />
    else if (path === "/settings" || path.startsWith("/settings/")) main = <SettingsView workspace={auth.workspace} />
    else main = <SessionList />
  }

  return (
    <div class="app">
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href="/" onClick={onLinkClick}>Cowork Cloud</a>
        <nav aria-label="Main">
          {NAV.filter(([href]) => signedIn || href === "/operator").map(([href, label]) => (
            <a href={href} onClick={onLinkClick} aria-current={path.startsWith(href) || (href === "/sessions" && path === "/") ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {signedIn && (
          <div class="who">
            <span class="muted">{auth.workspace.role ?? auth.workspace.principal.kind} · {auth.workspace.org.id}</span>
            <button type="button" onClick={signOut}>Sign out</button>
          </div>
        )}
      </header>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <main id="main" tabIndex={-1}>{main}</main>
    </div>
  )
}
