/**
 * A channel binding's `credentialRef` names a credential the gateway resolves itself. The org sets the reference, so
 * it may only name credentials the operator provisioned for that org — never the gateway's own token, a provider's
 * shared credential or another org's — in the org's namespace:
 *
 *   env:NAME   NAME begins with OPEN_COWORK_GATEWAY_CRED_<ORGKEY>__ (e.g. OPEN_COWORK_GATEWAY_CRED_ORG_5FABC__TG_BOT)
 *   file:name  a plain file name, read from <OPEN_COWORK_GATEWAY_CREDENTIALS_DIR>/<orgId>/name
 *
 * ORGKEY is an injective encoding of the org id into environment-name characters: `a-z` upper-cased, `0-9` as is,
 * every other UTF-8 byte as `_` and two upper-case hex digits (`_` is `_5F`, `A` is `_41`). It never contains `__`
 * and never ends with `_`, so with the `__` terminator no org's prefix is a prefix of another's: one org's namespace
 * never reaches into another's. The web role checks this when a binding is stored (an admin learns early); the
 * gateway checks it again before resolving (authoritative).
 */

export const CREDENTIAL_ENV_PREFIX = "OPEN_COWORK_GATEWAY_CRED_"
export const CREDENTIALS_DIR_VARIABLE = "OPEN_COWORK_GATEWAY_CREDENTIALS_DIR"

/** The stored syntax: `env:NAME` or `file:name` (a plain file name: no `/`, no leading `.`). */
export const CREDENTIAL_REF_PATTERN = /^(env:[A-Za-z_][A-Za-z0-9_]{0,254}|file:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127})$/

/** An org id usable as a directory name under the credentials directory (no `/`, never `.` or `..`). */
const ORG_DIRECTORY = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/

const HEX = "0123456789ABCDEF"

/** The org id encoded into environment-name characters (injective; never contains `__`, never ends with `_`). */
export const orgCredentialKey = (orgId: string): string => {
  let key = ""
  for (const byte of new TextEncoder().encode(orgId)) {
    if (byte >= 0x61 && byte <= 0x7a) key += String.fromCharCode(byte - 0x20)
    else if (byte >= 0x30 && byte <= 0x39) key += String.fromCharCode(byte)
    else key += `_${HEX[byte >> 4]}${HEX[byte & 15]}`
  }
  return key
}

/** Every `env:` credential of the org's bindings begins with this. */
export const orgCredentialEnvPrefix = (orgId: string): string => `${CREDENTIAL_ENV_PREFIX}${orgCredentialKey(orgId)}__`

/** The org's directory (relative to the credentials directory), or undefined when the org id cannot be one. */
const orgCredentialDirectory = (orgId: string): string | undefined => ORG_DIRECTORY.test(orgId) ? orgId : undefined

export type OrgCredentialRef =
  | { readonly _tag: "Env"; readonly name: string }
  | { readonly _tag: "File"; readonly directory: string; readonly name: string }

/**
 * The reference, checked against the org's namespace: what to read, or why it is refused. The reason names the
 * rule (and the org's own prefix), never the reference itself — an admin may have pasted a secret into it.
 */
export const orgCredentialRef = (ref: string, orgId: string): OrgCredentialRef | { readonly _tag: "Refused"; readonly reason: string } => {
  if (!CREDENTIAL_REF_PATTERN.test(ref)) {
    return {
      _tag: "Refused",
      reason: "a credentialRef is env:NAME or file:name (a plain file name in the org's credentials directory); paths, other schemes and values are refused"
    }
  }
  if (ref.startsWith("env:")) {
    const name = ref.slice("env:".length)
    const prefix = orgCredentialEnvPrefix(orgId)
    return name.startsWith(prefix) && name.length > prefix.length
      ? { _tag: "Env", name }
      : { _tag: "Refused", reason: `an env: credentialRef of this org names a variable beginning with ${prefix} (the org's namespace)` }
  }
  const directory = orgCredentialDirectory(orgId)
  return directory === undefined
    ? { _tag: "Refused", reason: "this org's id cannot name a credentials directory: use env: references" }
    : { _tag: "File", directory, name: ref.slice("file:".length) }
}
