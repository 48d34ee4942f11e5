import { useEffect, useState } from "preact/hooks"

/** History-API routing: every path here is one the web role serves the shell for (apps/web/src/Workbench.ts). */
const listeners = new Set<() => void>()

export const navigate = (path: string) => {
  if (path === window.location.pathname + window.location.search) return
  window.history.pushState(null, "", path)
  for (const listener of listeners) listener()
}

window.addEventListener("popstate", () => {
  for (const listener of listeners) listener()
})

export const usePath = (): string => {
  const [path, setPath] = useState(window.location.pathname)
  useEffect(() => {
    const update = () => setPath(window.location.pathname)
    listeners.add(update)
    return () => void listeners.delete(update)
  }, [])
  return path
}

/** A same-origin link that routes in place (modifier clicks still open a new tab). */
export const onLinkClick = (event: MouseEvent) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  const anchor = (event.currentTarget as HTMLAnchorElement)
  event.preventDefault()
  navigate(anchor.getAttribute("href") ?? "/")
}
