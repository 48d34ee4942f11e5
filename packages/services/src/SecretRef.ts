import { orgCredentialRef } from "@cowork/domain"
import { Config, ConfigProvider, Effect, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * Secret references: an operator's setting names where a secret is (`env:NAME`, `file:/absolute/path`), never the
 * secret itself. One resolver for every role: the web role's `*_SECRET_REF` settings, the gateway's provider
 * credentials, and (confined to the org's namespace) a channel binding's `credentialRef`.
 */

/** A reference that cannot be resolved; the message names the field and the reference's target, never a value. */
export class SecretRefError extends Error {
  override readonly name = "SecretRefError"
}

type Env = Readonly<Record<string, string | undefined>>

/** Resolves an `env:NAME` / `file:/absolute/path` reference to its value (trimmed); throws naming the field, never the value. */
export const resolveSecretRef = (ref: string, field: string, env: Env = process.env): string => {
  if (ref.startsWith("env:")) {
    const name = ref.slice(4)
    const value = env[name]
    if (value === undefined || value.trim() === "") throw new SecretRefError(`${field}: environment variable ${name} is not set`)
    return value.trim()
  }
  if (ref.startsWith("file:")) {
    const path = ref.startsWith("file://") ? ref.slice(7) : ref.slice(5)
    if (!path.startsWith("/")) throw new SecretRefError(`${field}: file: refs need an absolute path`)
    let value: string
    try {
      value = Fs.readFileSync(path, "utf8").trim()
    } catch {
      throw new SecretRefError(`${field}: cannot read ${path}`)
    }
    if (value === "") throw new SecretRefError(`${field}: ${path} is empty`)
    return value
  }
  throw new SecretRefError(`${field}: a credential must be a reference (env:NAME or file:/absolute/path), never inline`)
}

/**
 * The same resolution for a role's Effect `Config` settings: an `env:` reference is read through the current
 * ConfigProvider (as every other setting is); a failure is a ConfigError naming the field.
 */
export const resolveSecretRefConfig = (ref: string, field: string): Effect.Effect<Redacted.Redacted<string>, Config.ConfigError> =>
  Effect.gen(function*() {
    const env: Record<string, string | undefined> = {}
    if (ref.startsWith("env:")) {
      const name = ref.slice(4)
      env[name] = Option.getOrUndefined(yield* Config.option(Config.String(name)))
    }
    return yield* Effect.try({
      try: () => Redacted.make(resolveSecretRef(ref, field, env)),
      catch: (error) =>
        new Config.ConfigError(new ConfigProvider.SourceError({ message: error instanceof SecretRefError ? error.message : `${field} cannot be resolved` }))
    })
  })

/**
 * A reference an org set (a channel binding's `credentialRef`), resolved only inside the org's namespace (see
 * CredentialNamespace.ts in the domain): `env:NAME` with the org's prefix, `file:name` under
 * `<credentialsDir>/<orgId>/`. Anything else throws a `SecretRefError` naming the refusal, before anything is read.
 */
export const resolveOrgSecretRef = (
  ref: string,
  orgId: string,
  field: string,
  options: { readonly env: Env; readonly credentialsDir: string | undefined }
): string => {
  const checked = orgCredentialRef(ref, orgId)
  switch (checked._tag) {
    case "Refused":
      throw new SecretRefError(`${field} refused: ${checked.reason}`)
    case "Env":
      return resolveSecretRef(`env:${checked.name}`, field, options.env)
    case "File": {
      if (options.credentialsDir === undefined || !Path.isAbsolute(options.credentialsDir)) {
        throw new SecretRefError(`${field}: file: references need OPEN_COWORK_GATEWAY_CREDENTIALS_DIR (an absolute path) on the gateway`)
      }
      return resolveSecretRef(`file:${Path.join(options.credentialsDir, checked.directory, checked.name)}`, field, {})
    }
  }
}
