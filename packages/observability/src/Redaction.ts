/**
 * The one redaction pass for everything that leaves the process in readable form: log lines, diagnostics
 * bundles, error bodies and metric labels. It masks credentials and personal data while leaving the shape of
 * the text (schemes, hosts, parameter names, token prefixes) so an operator can still tell what was there.
 */

export const REDACTED = "[REDACTED]"

interface Rule {
  readonly name: string
  readonly pattern: RegExp
  readonly replace: (match: string, ...groups: Array<string>) => string
}

const SENSITIVE_QUERY_PARAMS = [
  "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
  "signature", "sig", "token", "access_token", "id_token", "refresh_token", "api_key", "apikey", "key", "code",
  "client_secret", "password", "secret", "skoid", "sktid", "se_token"
]

const SENSITIVE_ASSIGNMENT_KEYS =
  "password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|private[_-]?key"

/** A host path starts where it cannot be the tail of a URL or of a longer path (file:// URLs excepted). */
const PATH_START = String.raw`(?:(?<=file://)|(?<![\w.~/\\-]))`
const PATH_REST = String.raw`(?:[/\\][^\s"'\`<>|,;)\]}]*)?`

const rules: ReadonlyArray<Rule> = [
  {
    name: "private-key-block",
    pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
    replace: () => `-----BEGIN PRIVATE KEY-----${REDACTED}-----END PRIVATE KEY-----`
  },
  {
    // postgres://user:pass@host/db → postgres://[REDACTED]@host/db; scheme and host stay for diagnosis.
    name: "url-credentials",
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]+@(?=[^\s/?#@"'<>])/gi,
    replace: (_, scheme: string) => `${scheme}${REDACTED}@`
  },
  {
    name: "signed-url-param",
    pattern: new RegExp(String.raw`([?&;](?:${SENSITIVE_QUERY_PARAMS.join("|")})=)[^&#\s"'<>]+`, "gi"),
    replace: (_, prefix: string) => `${prefix}${REDACTED}`
  },
  {
    name: "credential-header",
    pattern: /\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)(\s*[:=]\s*)("?)[^\r\n"]+/gi,
    replace: (_, header: string, separator: string, quote: string) => `${header}${separator}${quote}${REDACTED}`
  },
  {
    name: "bearer",
    // Real credentials carry a digit or symbol, or are long; "Bearer authentication" stays readable.
    pattern: /\b(Bearer|Basic)\s+(?:(?=[A-Za-z]*[0-9\-._~+/])[A-Za-z0-9\-._~+/]{8,}|[A-Za-z]{20,})=*/g,
    replace: (_, scheme: string) => `${scheme} ${REDACTED}`
  },
  {
    name: "cowork-token",
    pattern: /\b(occ|ocw|whsec)_[A-Za-z0-9_-]{6,}/g,
    replace: (_, prefix: string) => `${prefix}_${REDACTED}`
  },
  {
    name: "provider-key",
    pattern: new RegExp(
      [
        String.raw`\bsk-ant-[A-Za-z0-9_-]{16,}`,
        String.raw`\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}`,
        String.raw`\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}`,
        String.raw`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,
        String.raw`\bAIza[0-9A-Za-z_-]{35}`,
        String.raw`\bgh[pousr]_[A-Za-z0-9]{30,}`,
        String.raw`\bgithub_pat_[A-Za-z0-9_]{30,}`,
        String.raw`\bglpat-[A-Za-z0-9_-]{20,}`,
        String.raw`\bxox[abprse]-[A-Za-z0-9-]{10,}`,
        String.raw`\bhf_[A-Za-z0-9]{30,}`,
        String.raw`\bgsk_[A-Za-z0-9]{30,}`,
        String.raw`\bxai-[A-Za-z0-9]{30,}`,
        // A Telegram bot token, also inside a Bot API URL (`https://api.telegram.org/bot<token>/getMe`).
        String.raw`(?:\b|(?<=\/bot))\d{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])`,
        String.raw`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`
      ].join("|"),
      "g"
    ),
    replace: () => REDACTED
  },
  {
    // password=hunter2, "apiKey": "abc", client_secret: xyz (config dumps, libpq conninfo, JSON text).
    name: "secret-assignment",
    pattern: new RegExp(String.raw`(?<![A-Za-z0-9])(${SENSITIVE_ASSIGNMENT_KEYS})("?\s*[:=]\s*"?)(?!\[REDACTED\])[^\s"'&,;}]+`, "gi"),
    replace: (_, key: string, separator: string) => `${key}${separator}${REDACTED}`
  },
  {
    name: "email",
    pattern: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g,
    replace: () => "[REDACTED_EMAIL]"
  },
  {
    name: "host-path",
    pattern: new RegExp(
      String.raw`${PATH_START}(?:/home/[^\s/"'\`<>]+|/Users/[^\s/"'\`<>]+|/root|/workspace|[A-Za-z]:\\Users\\[^\s\\"'\`<>]+)` +
        String.raw`(?=$|[/\\\s"'\`<>|,;)\]}])${PATH_REST}`,
      "g"
    ),
    replace: () => "[REDACTED_PATH]"
  }
]

/**
 * Short strings the rules left unchanged, so the next pass over the same text (a log message, an annotation key,
 * a session id on every line of its session) skips the ten rules. Only clean text is remembered — never one that
 * had something to mask — and the set is emptied when full.
 */
const clean = new Set<string>()
const CLEAN_MAX_LENGTH = 128
const CLEAN_MAX_ENTRIES = 4096

/** Masks every secret-looking or personal substring of `text`; text without any comes back unchanged. */
export const redact = (text: string): string => {
  const short = text.length <= CLEAN_MAX_LENGTH
  if (short && clean.has(text)) return text
  let result = text
  for (const rule of rules) result = result.replace(rule.pattern, rule.replace as (m: string, ...g: Array<any>) => string)
  if (short && result === text) {
    if (clean.size >= CLEAN_MAX_ENTRIES) clean.clear()
    clean.add(text)
  }
  return result
}

const SENSITIVE_KEYS = new Set([
  "authorization", "proxyauthorization", "cookie", "setcookie", "password", "passwd", "secret", "clientsecret",
  "token", "accesstoken", "refreshtoken", "idtoken", "apikey", "xapikey", "privatekey", "plaintext", "credential",
  "sessiontoken", "webhooksecret", "signingsecret"
])

const isSensitiveKey = (key: string): boolean => SENSITIVE_KEYS.has(key.toLowerCase().replace(/[^a-z]/g, ""))

/**
 * Redacts every string inside `value` (objects, arrays, errors), and masks whole values under keys that name
 * a secret (`password`, `authorization`, `apiKey`, ...). Returns a JSON-friendly copy; the input is untouched.
 */
export const redactDeep = (value: unknown): unknown => walk(value, new WeakSet())

const walk = (value: unknown, seen: WeakSet<object>): unknown => {
  if (typeof value === "string") return redact(value)
  if (typeof value === "bigint") return value.toString()
  if (value === null || typeof value !== "object") return value
  if (value instanceof Date) return value.toISOString()
  if (seen.has(value)) return "[Circular]"
  seen.add(value)
  if (Array.isArray(value)) return value.map((item) => walk(item, seen))
  if (value instanceof Error) {
    const error: Record<string, unknown> = { name: value.name, message: redact(value.message) }
    for (const [key, field] of Object.entries(value)) error[key] = isSensitiveKey(key) ? REDACTED : walk(field, seen)
    if (value.stack !== undefined) error.stack = redact(value.stack)
    return error
  }
  if (value instanceof Map) return walk(Object.fromEntries(value), seen)
  if (value instanceof Set) return walk([...value], seen)
  if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`
  const source = typeof (value as { toJSON?: unknown }).toJSON === "function"
    ? (value as { toJSON: () => unknown }).toJSON()
    : value
  if (source !== value) return walk(source, seen)
  const result: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) {
    result[redact(key)] = isSensitiveKey(key) && field !== null && field !== undefined && typeof field !== "boolean"
      ? REDACTED
      : walk(field, seen)
  }
  return result
}
