import * as Crypto from "node:crypto"

/**
 * The one home of the id and hash helpers behind tokens and credentials: random ids, fresh secrets, and the sha256
 * that is all a store keeps of a secret.
 */

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/** A random alphanumeric id (token ids, credential ids, pool and worker ids). */
export const randomId = (length = 20): string => {
  let id = ""
  for (const byte of Crypto.randomBytes(length)) id += ALPHANUMERIC[byte % ALPHANUMERIC.length]
  return id
}

/** A fresh 256-bit secret, base64url. */
export const newSecret = (): string => Crypto.randomBytes(32).toString("base64url")

/** Hex sha256 of a string (UTF-8) or bytes. */
export const sha256Hex = (data: string | Uint8Array): string => Crypto.hash("sha256", data, "hex")

/** An incremental sha256 for streamed bytes. */
export const sha256Stream = () => {
  const hash = Crypto.createHash("sha256")
  return { update: (chunk: Uint8Array) => void hash.update(chunk), digestHex: () => hash.digest("hex") }
}

/**
 * Constant-time comparison of two hex digests. A missing `stored` digest still costs a comparison, so timing does
 * not reveal which ids exist.
 */
export const sameDigest = (stored: string | undefined, presented: string): boolean => {
  const presentedBytes = Buffer.from(presented, "hex")
  const storedBytes = stored === undefined ? Buffer.alloc(presentedBytes.length) : Buffer.from(stored, "hex")
  return stored !== undefined && storedBytes.length === presentedBytes.length &&
    Crypto.timingSafeEqual(storedBytes, presentedBytes)
}
