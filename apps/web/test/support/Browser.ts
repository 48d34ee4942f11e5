/**
 * A browser-less browser for sign-in tests: `fetch` with a cookie jar per host (no path scoping; Secure, HttpOnly and
 * SameSite are recorded, so tests can assert them), manual redirects, and a driver that walks an IdP's login and
 * consent forms.
 */
export interface StoredCookie {
  readonly value: string
  readonly attributes: string
}

export interface BrowserResponse {
  readonly url: URL
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: any
}

export class Browser {
  readonly jar = new Map<string, Map<string, StoredCookie>>()
  /** Every `Set-Cookie` the browser received, raw, in order. */
  readonly setCookies: Array<string> = []

  cookie(host: string, name: string): StoredCookie | undefined {
    return this.jar.get(host)?.get(name)
  }

  setCookie(host: string, name: string, value: string) {
    const cookies = this.jar.get(host) ?? new Map<string, StoredCookie>()
    cookies.set(name, { value, attributes: "" })
    this.jar.set(host, cookies)
  }

  async request(
    method: string,
    url: string | URL,
    options: { readonly headers?: Record<string, string>; readonly body?: string; readonly json?: unknown } = {}
  ): Promise<BrowserResponse> {
    const target = new URL(url)
    const headers: Record<string, string> = { ...options.headers }
    const cookies = this.jar.get(target.host)
    if (cookies !== undefined && cookies.size > 0 && headers.cookie === undefined) {
      headers.cookie = [...cookies].map(([name, cookie]) => `${name}=${cookie.value}`).join("; ")
    }
    let body = options.body
    if (options.json !== undefined) {
      body = JSON.stringify(options.json)
      headers["content-type"] ??= "application/json"
    }
    const response = await fetch(target, { method, headers, body, redirect: "manual" })
    for (const raw of response.headers.getSetCookie()) {
      this.setCookies.push(raw)
      const [pair, ...attributes] = raw.split(";")
      const separator = pair!.indexOf("=")
      const name = pair!.slice(0, separator).trim()
      const value = pair!.slice(separator + 1).trim()
      const attributeText = attributes.join(";")
      const jar = this.jar.get(target.host) ?? new Map<string, StoredCookie>()
      const expired = /max-age=0\b/i.test(attributeText) || /expires=Thu, 01 Jan 1970/i.test(attributeText) || value === ""
      if (expired) jar.delete(name)
      else jar.set(name, { value, attributes: attributeText })
      this.jar.set(target.host, jar)
    }
    const text = await response.text()
    let json: unknown
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    return { url: target, status: response.status, headers: response.headers, text, json }
  }

  /**
   * Follows redirects from `start`, filling the IdP's login form with `login` and accepting its consent form, and
   * stops at the first redirect to `stopAt` (the relying party's callback), returning that URL unvisited.
   */
  async walkToCallback(start: string | URL, login: string, stopAt: string): Promise<URL> {
    let next: { method: string; url: URL; body?: string } = { method: "GET", url: new URL(start) }
    for (let step = 0; step < 20; step++) {
      const response = await this.request(next.method, next.url, next.body === undefined ? {} : {
        body: next.body,
        headers: { "content-type": "application/x-www-form-urlencoded" }
      })
      if (response.status >= 300 && response.status < 400) {
        const location = new URL(response.headers.get("location")!, response.url)
        if (location.toString().startsWith(stopAt)) return location
        next = { method: "GET", url: location }
        continue
      }
      const form = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(response.text)
      const prompt = /name="prompt" value="([^"]+)"/.exec(response.text)?.[1]
      if (response.status !== 200 || form === null || prompt === undefined) {
        throw new Error(`unexpected IdP page (${response.status}) at ${response.url}: ${response.text.slice(0, 300)}`)
      }
      const fields = new URLSearchParams({ prompt })
      if (prompt === "login") {
        fields.set("login", login)
        fields.set("password", "any password")
      }
      next = { method: "POST", url: new URL(form[1]!.replaceAll("&amp;", "&"), response.url), body: fields.toString() }
    }
    throw new Error("too many steps before reaching the callback")
  }
}
