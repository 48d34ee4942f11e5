import { Schema } from "effect"

export const OrgId = Schema.String.pipe(Schema.brand("OrgId"))
export type OrgId = typeof OrgId.Type

export const SessionId = Schema.String.pipe(Schema.brand("SessionId"))
export type SessionId = typeof SessionId.Type

export const CommandId = Schema.String.pipe(Schema.brand("CommandId"))
export type CommandId = typeof CommandId.Type

export const WorkerId = Schema.String.pipe(Schema.brand("WorkerId"))
export type WorkerId = typeof WorkerId.Type

export const TokenId = Schema.String.pipe(Schema.brand("TokenId"))
export type TokenId = typeof TokenId.Type

/** Time-ordered, url-safe identifier with a readable prefix (`ses_…`, `cmd_…`). */
export const makeId = (prefix: string): string => {
  const time = Date.now().toString(36).padStart(9, "0")
  const random = globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 16)
  return `${prefix}_${time}${random}`
}

export const newSessionId = (): SessionId => makeId("ses") as SessionId
export const newCommandId = (): CommandId => makeId("cmd") as CommandId
export const newOrgId = (): OrgId => makeId("org") as OrgId
export const newEventId = (): string => makeId("evt")
