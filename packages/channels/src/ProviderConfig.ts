import { CREDENTIAL_ENV_PREFIX, CREDENTIALS_DIR_VARIABLE } from "@cowork/domain"
import { ProviderAddress, resolveSecretRef, SecretRefError } from "@cowork/services"
import * as Path from "node:path"
import type { ChannelProvider, ProviderKind } from "./ChannelProvider.ts"
import { PROVIDER_KINDS } from "./ChannelProvider.ts"
import { makeEmailProvider } from "./EmailProvider.ts"
import { makeSlackProvider } from "./SlackProvider.ts"
import { makeTelegramProvider } from "./TelegramProvider.ts"
import { makeWebhookProvider } from "./WebhookProvider.ts"

/**
 * The gateway's providers, as `OPEN_COWORK_GATEWAY_PROVIDERS` (a JSON array) declares them. Credentials are never
 * inline: each `*Ref` is `env:NAME` or `file:/absolute/path`, read once at start.
 *
 *   {"id":"tg","kind":"telegram","botTokenRef":"env:TG_TOKEN","webhookSecretRef":"env:TG_HOOK","apiRoot":"https://api.telegram.org"}
 *   {"id":"slack","kind":"slack","botTokenRef":"file:/run/secrets/slack_bot","signingSecretRef":"env:SLACK_SIGNING","apiUrl":"https://slack.com/api/"}
 *   {"id":"mail","kind":"email","host":"smtp.example.com","port":587,"secure":false,"user":"bot","passwordRef":"env:SMTP_PASS","from":"bot@example.com",
 *    "inboundSecretRef":"env:MAIL_RELAY_SECRET"}
 *   {"id":"hooks","kind":"webhook","inboundSecretRef":"env:HOOK_IN","outboundSecretRef":"env:HOOK_OUT"}
 *
 * A webhook provider posts to each binding's org-supplied URL: only public addresses, unless the host is listed in
 * `OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS` (read from `env`).
 */
interface ProviderConfig {
  readonly id: string
  readonly kind: ProviderKind
  /** Non-secret settings, as given (for diagnostics: refs are names, never values). */
  readonly settings: Readonly<Record<string, string | number | boolean>>
}

export class ProviderConfigError extends Error {
  override readonly name = "ProviderConfigError"
}

const PROVIDER_ID = /^[a-z0-9][a-z0-9-]{0,39}$/

/**
 * A provider credential: the one resolver (services' SecretRef), its failure as this configuration's error. A
 * provider's credential is shared by every org it serves, so it may not live in an org's credential namespace
 * (an `OPEN_COWORK_GATEWAY_CRED_*` variable, a file under OPEN_COWORK_GATEWAY_CREDENTIALS_DIR): that org's
 * bindings could name it as their own.
 */
const resolveRef = (ref: string, field: string, env: Readonly<Record<string, string | undefined>>): string => {
  const credentialsDir = env[CREDENTIALS_DIR_VARIABLE]
  const path = ref.startsWith("file://") ? ref.slice(7) : ref.startsWith("file:") ? ref.slice(5) : undefined
  if (
    ref.startsWith(`env:${CREDENTIAL_ENV_PREFIX}`) ||
    (path !== undefined && credentialsDir !== undefined && credentialsDir !== "" &&
      Path.resolve(path).startsWith(`${Path.resolve(credentialsDir)}${Path.sep}`))
  ) {
    throw new ProviderConfigError(
      `${field}: a provider's credential may not be in the per-org credential namespace (${CREDENTIAL_ENV_PREFIX}* variables, files under ${CREDENTIALS_DIR_VARIABLE})`
    )
  }
  try {
    return resolveSecretRef(ref, field, env)
  } catch (error) {
    if (error instanceof SecretRefError) throw new ProviderConfigError(error.message)
    throw error
  }
}

type Raw = Record<string, unknown>

const field = (raw: Raw, index: number, name: string) => ({ name: `OPEN_COWORK_GATEWAY_PROVIDERS[${index}].${name}`, value: raw[name] })

const requiredString = (raw: Raw, index: number, name: string): string => {
  const { name: path, value } = field(raw, index, name)
  if (typeof value !== "string" || value === "") throw new ProviderConfigError(`${path} is required (a non-empty string)`)
  return value
}
const optionalString = (raw: Raw, index: number, name: string): string | undefined => {
  const { name: path, value } = field(raw, index, name)
  if (value === undefined) return undefined
  if (typeof value !== "string" || value === "") throw new ProviderConfigError(`${path} must be a non-empty string`)
  return value
}
const optionalNumber = (raw: Raw, index: number, name: string, fallback: number): number => {
  const { name: path, value } = field(raw, index, name)
  if (value === undefined) return fallback
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) throw new ProviderConfigError(`${path} must be a positive integer`)
  return value
}
const optionalBoolean = (raw: Raw, index: number, name: string): boolean => {
  const { name: path, value } = field(raw, index, name)
  if (value === undefined) return false
  if (typeof value !== "boolean") throw new ProviderConfigError(`${path} must be true or false`)
  return value
}
const secret = (raw: Raw, index: number, name: string, env: Readonly<Record<string, string | undefined>>): string | undefined => {
  const ref = optionalString(raw, index, name)
  return ref === undefined ? undefined : resolveRef(ref, `OPEN_COWORK_GATEWAY_PROVIDERS[${index}].${name}`, env)
}
const requiredSecret = (raw: Raw, index: number, name: string, env: Readonly<Record<string, string | undefined>>): string =>
  resolveRef(requiredString(raw, index, name), `OPEN_COWORK_GATEWAY_PROVIDERS[${index}].${name}`, env)

const httpUrl = (raw: Raw, index: number, name: string): string | undefined => {
  const value = optionalString(raw, index, name)
  if (value === undefined) return undefined
  try {
    const url = new URL(value)
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error()
    if (url.username !== "" || url.password !== "") throw new ProviderConfigError(`OPEN_COWORK_GATEWAY_PROVIDERS[${index}].${name} must not carry credentials`)
  } catch (error) {
    if (error instanceof ProviderConfigError) throw error
    throw new ProviderConfigError(`OPEN_COWORK_GATEWAY_PROVIDERS[${index}].${name} must be an http(s) URL`)
  }
  return value
}

export interface ConfiguredProvider {
  readonly config: ProviderConfig
  readonly provider: ChannelProvider
  /**
   * The same provider (same settings, same inbound secrets) sending with another outbound credential: a binding's
   * own `credentialRef` — the bot token (Telegram, Slack), the SMTP password (email), the outbound signing secret
   * (webhook).
   */
  readonly withCredential: (credential: string) => ChannelProvider
}

/** Parses the JSON list and builds each provider; throws a `ProviderConfigError` naming the field that is wrong. */
export const makeProviders = (
  json: string,
  env: Readonly<Record<string, string | undefined>> = process.env
): ReadonlyArray<ConfiguredProvider> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    throw new ProviderConfigError("OPEN_COWORK_GATEWAY_PROVIDERS is not JSON (a list of providers)")
  }
  if (!Array.isArray(parsed)) throw new ProviderConfigError("OPEN_COWORK_GATEWAY_PROVIDERS must be a JSON array")
  if (parsed.length > 32) throw new ProviderConfigError("OPEN_COWORK_GATEWAY_PROVIDERS: at most 32 providers")
  const seen = new Set<string>()
  return parsed.map((entry, index): ConfiguredProvider => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new ProviderConfigError(`OPEN_COWORK_GATEWAY_PROVIDERS[${index}] must be an object`)
    }
    const raw = entry as Raw
    const id = requiredString(raw, index, "id")
    if (!PROVIDER_ID.test(id)) throw new ProviderConfigError(`OPEN_COWORK_GATEWAY_PROVIDERS[${index}].id must match ${PROVIDER_ID.source}`)
    if (seen.has(id)) throw new ProviderConfigError(`OPEN_COWORK_GATEWAY_PROVIDERS[${index}].id "${id}" is used twice`)
    seen.add(id)
    const kind = requiredString(raw, index, "kind")
    if (!(PROVIDER_KINDS as ReadonlyArray<string>).includes(kind)) {
      throw new ProviderConfigError(`OPEN_COWORK_GATEWAY_PROVIDERS[${index}].kind must be one of ${PROVIDER_KINDS.join(", ")}`)
    }
    const timeoutMs = optionalNumber(raw, index, "timeoutMs", 10_000)
    const visible: Record<string, string | number | boolean> = {}
    for (const [key, value] of Object.entries(raw)) {
      if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") visible[key] = value
    }
    const config: ProviderConfig = { id, kind: kind as ProviderKind, settings: visible }
    switch (kind as ProviderKind) {
      case "telegram": {
        const settings = {
          id,
          botToken: requiredSecret(raw, index, "botTokenRef", env),
          webhookSecret: secret(raw, index, "webhookSecretRef", env),
          apiRoot: httpUrl(raw, index, "apiRoot"),
          timeoutMs
        }
        return { config, provider: makeTelegramProvider(settings), withCredential: (botToken) => makeTelegramProvider({ ...settings, botToken }) }
      }
      case "slack": {
        const settings = {
          id,
          botToken: requiredSecret(raw, index, "botTokenRef", env),
          signingSecret: secret(raw, index, "signingSecretRef", env),
          apiUrl: httpUrl(raw, index, "apiUrl"),
          timeoutMs
        }
        return { config, provider: makeSlackProvider(settings), withCredential: (botToken) => makeSlackProvider({ ...settings, botToken }) }
      }
      case "email": {
        const settings = {
          id,
          host: requiredString(raw, index, "host"),
          port: optionalNumber(raw, index, "port", 587),
          secure: optionalBoolean(raw, index, "secure"),
          user: optionalString(raw, index, "user"),
          password: secret(raw, index, "passwordRef", env),
          from: requiredString(raw, index, "from"),
          subject: optionalString(raw, index, "subject"),
          ignoreTls: optionalBoolean(raw, index, "ignoreTls"),
          inboundSecret: secret(raw, index, "inboundSecretRef", env),
          timeoutMs
        }
        return { config, provider: makeEmailProvider(settings), withCredential: (password) => makeEmailProvider({ ...settings, password }) }
      }
      case "webhook": {
        const settings = {
          id,
          inboundSecret: secret(raw, index, "inboundSecretRef", env),
          outboundSecret: secret(raw, index, "outboundSecretRef", env),
          timeoutMs,
          allowedHosts: ProviderAddress.parseAllowedHosts(env[ProviderAddress.WEBHOOK_ALLOWED_HOSTS_VARIABLE] ?? "")
        }
        return { config, provider: makeWebhookProvider(settings), withCredential: (outboundSecret) => makeWebhookProvider({ ...settings, outboundSecret }) }
      }
    }
  })
}
