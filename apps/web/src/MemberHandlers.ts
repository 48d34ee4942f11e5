import { Api, Conflict, CurrentPrincipal, Forbidden, type MemberRole, NotFound } from "@cowork/domain"
import { Identity } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { actorOf, recordAudit } from "./AuditHandlers.ts"

/** `/api/members`: owners and admins manage the org's people; an admin token acts with an owner's rights. */
export const layer = HttpApiBuilder.group(Api, "members", Effect.fn(function*(handlers) {
  const identity = yield* Identity

  /** The member being changed, and whether the caller may change them (only an owner touches an owner). */
  const target = Effect.fn("Members.target")(function*(accountId: string, grant?: MemberRole) {
    const principal = yield* CurrentPrincipal
    const actorRole: MemberRole = principal.browserSession?.role ?? "owner"
    const role = yield* identity.role(principal.orgId, accountId)
    if (role === undefined) return yield* new NotFound({ message: `no member ${accountId} in this org` })
    if (actorRole !== "owner" && (role === "owner" || grant === "owner")) {
      return yield* new Forbidden({ message: "only an owner can grant, change or remove the owner role" })
    }
    return { orgId: principal.orgId, role, actor: actorOf(principal) }
  })

  const keepsAnOwner = Effect.fn("Members.keepsAnOwner")(function*(orgId: string, accountId: string, role: MemberRole) {
    if (role !== "owner") return
    const owners = (yield* identity.listMembers(orgId)).filter((member) => member.role === "owner")
    if (owners.length === 1 && owners[0]!.accountId === accountId) {
      return yield* new Conflict({ message: "the org's last owner cannot be demoted or removed" })
    }
  })

  return handlers.handleAll({
    list: () =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { members: yield* identity.listMembers(principal.orgId) }
      }),
    invite: ({ payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const actorRole: MemberRole = principal.browserSession?.role ?? "owner"
        if (actorRole !== "owner" && payload.role === "owner") {
          return yield* new Forbidden({ message: "only an owner can grant, change or remove the owner role" })
        }
        const email = payload.email.toLowerCase()
        yield* identity.invite(principal.orgId, email, payload.role)
        yield* recordAudit({ orgId: principal.orgId, actor: actorOf(principal), action: "member.invited", target: `email:${email}`, details: { role: payload.role } })
        return { invitation: { email, role: payload.role } }
      }),
    update: ({ params, payload }) =>
      Effect.gen(function*() {
        const { orgId, role, actor } = yield* target(params.id, payload.role)
        if (payload.role !== "owner") yield* keepsAnOwner(orgId, params.id, role)
        const member = yield* identity.setRole(orgId, params.id, payload.role)
        yield* recordAudit({ orgId, actor, action: "member.role_changed", target: `account:${params.id}`, details: { from: role, to: payload.role } })
        return { member }
      }),
    remove: ({ params }) =>
      Effect.gen(function*() {
        const { orgId, role, actor } = yield* target(params.id)
        yield* keepsAnOwner(orgId, params.id, role)
        yield* identity.removeMember(orgId, params.id)
        yield* recordAudit({ orgId, actor, action: "member.removed", target: `account:${params.id}`, details: { role } })
      }),
    revokeSessions: ({ params }) =>
      Effect.gen(function*() {
        const { orgId, actor } = yield* target(params.id)
        const revoked = yield* identity.revokeAccountSessions(orgId, params.id)
        yield* recordAudit({ orgId, actor, action: "member.sessions_revoked", target: `account:${params.id}`, details: { revoked } })
        return { revoked }
      })
  })
}))
