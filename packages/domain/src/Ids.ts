import { Schema } from "effect"

export const OrgId = Schema.String.pipe(Schema.brand("OrgId"))
export type OrgId = typeof OrgId.Type

export const SessionId = Schema.String.pipe(Schema.brand("SessionId"))
export type SessionId = typeof SessionId.Type

export const CommandId = Schema.String.pipe(Schema.brand("CommandId"))
export type CommandId = typeof CommandId.Type

const HEX_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))
const RANDOM_POOL_BYTES = 4096
const randomPool = new Uint8Array(RANDOM_POOL_BYTES)
let randomOffset = RANDOM_POOL_BYTES

/**
 * 16 hex digits (64 random bits) from the platform CSPRNG, drawn from a pool refilled 4 KiB at a time: every id of
 * an event or command costs no call into the random source of its own (each byte is used once).
 */
const randomHex16 = (): string => {
  if (randomOffset + 8 > RANDOM_POOL_BYTES) {
    globalThis.crypto.getRandomValues(randomPool)
    randomOffset = 0
  }
  const at = randomOffset
  randomOffset += 8
  return HEX_BYTE[randomPool[at]!]! + HEX_BYTE[randomPool[at + 1]!]! + HEX_BYTE[randomPool[at + 2]!]! +
    HEX_BYTE[randomPool[at + 3]!]! + HEX_BYTE[randomPool[at + 4]!]! + HEX_BYTE[randomPool[at + 5]!]! +
    HEX_BYTE[randomPool[at + 6]!]! + HEX_BYTE[randomPool[at + 7]!]!
}

/** Time-ordered, url-safe identifier with a readable prefix (`ses_…`, `cmd_…`). */
export const makeId = (prefix: string): string => `${prefix}_${Date.now().toString(36).padStart(9, "0")}${randomHex16()}`

export const newSessionId = (): SessionId => makeId("ses") as SessionId
export const newCommandId = (): CommandId => makeId("cmd") as CommandId
export const newOrgId = (): OrgId => makeId("org") as OrgId
export const newEventId = (): string => makeId("evt")
