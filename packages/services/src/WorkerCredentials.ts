import { formatWorkerCredential, parseWorkerCredential } from "@cowork/domain"
import { Redacted } from "effect"
import { newSecret, randomId, sha256Hex } from "./Secrets.ts"

const DEFAULT_CREDENTIAL_TTL_SECONDS = 30 * 24 * 3600
const MAX_CREDENTIAL_TTL_SECONDS = 365 * 24 * 3600

const hashWorkerSecret = (secret: string): string => sha256Hex(secret)

/** A fresh credential: its id, the plaintext to hand out once, and the only thing stored, the secret's sha256. */
export const newWorkerSecret = () => {
  const credentialId = randomId()
  const secret = newSecret()
  return {
    credentialId,
    plaintext: Redacted.make(formatWorkerCredential(credentialId, secret)),
    secretHash: hashWorkerSecret(secret)
  }
}

export const clampCredentialTtl = (seconds: number | undefined): number =>
  Math.min(MAX_CREDENTIAL_TTL_SECONDS, Math.max(1, Math.floor(seconds ?? DEFAULT_CREDENTIAL_TTL_SECONDS)))

/** What a worker presented, as the stores look it up. */
export interface PresentedCredential {
  /** `null`: no credential (an unmanaged worker). `""`: a credential that does not parse (matches nothing). */
  readonly credentialId: string | null
  readonly secretHash: string | null
}

/**
 * The one parse of a presented worker credential (claims and heartbeats). A credential that does not parse still
 * marks the worker as managed: it matches no stored credential, so that worker claims nothing and cannot beat.
 */
export const presentedCredential = (credential: Redacted.Redacted<string> | undefined): PresentedCredential => {
  if (credential === undefined) return { credentialId: null, secretHash: null }
  const parsed = parseWorkerCredential(Redacted.value(credential))
  return parsed === undefined
    ? { credentialId: "", secretHash: null }
    : { credentialId: parsed.credentialId, secretHash: hashWorkerSecret(parsed.secret) }
}
