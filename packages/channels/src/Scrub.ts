import { redact } from "@cowork/observability"

/** Bounds an error text, removes the provider's own secrets (a bot token sits in Telegram's URL path), then the usual redaction. */
export const scrub = (message: string, secrets: ReadonlyArray<string>): string => {
  let text = message.length > 500 ? `${message.slice(0, 500)}…` : message
  for (const secret of secrets) if (secret.length >= 4) text = text.split(secret).join("[REDACTED]")
  return redact(text)
}

export const errorText = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : typeof error === "string" ? error : "unknown error"
