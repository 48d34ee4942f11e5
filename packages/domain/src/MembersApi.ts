import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Member, MemberRole } from "./Identity.ts"
import { Id, Text } from "./Input.ts"

const accountParams = { id: Id }

/** Org members and their roles (`admin` scope: owners and admins, or an admin token). */
export class MembersApi extends HttpApiGroup.make("members")
  .add(
    HttpApiEndpoint.get("list", "/api/members", { success: Schema.Struct({ members: Schema.Array(Member) }) }),
    HttpApiEndpoint.post("invite", "/api/members", {
      payload: Schema.Struct({ email: Text(320).check(Schema.isPattern(/^[^@\s]+@[^@\s]+$/)), role: MemberRole }),
      success: Schema.Struct({ invitation: Schema.Struct({ email: Schema.String, role: MemberRole }) }).pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.Forbidden]
    }).annotate(OpenApi.Description, "Invites a person by email: their first sign-in with that verified email makes them a member with the role."),
    HttpApiEndpoint.patch("update", "/api/members/:id", {
      params: accountParams,
      payload: Schema.Struct({ role: MemberRole }),
      success: Schema.Struct({ member: Member }),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Forbidden, ApiError.Conflict]
    }).annotate(OpenApi.Description, "Changes a member's role; only an owner grants or changes `owner`; the last owner stays."),
    HttpApiEndpoint.delete("remove", "/api/members/:id", {
      params: accountParams,
      success: HttpApiSchema.NoContent,
      error: [ApiError.NotFound, ApiError.Forbidden, ApiError.Conflict]
    }).annotate(OpenApi.Description, "Removes the member and ends their browser sessions at once."),
    HttpApiEndpoint.delete("revokeSessions", "/api/members/:id/sessions", {
      params: accountParams,
      success: Schema.Struct({ revoked: Schema.Number }),
      error: [ApiError.NotFound, ApiError.Forbidden]
    }).annotate(OpenApi.Description, "Ends every browser session of the member, at once (they must sign in again).")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["admin"])
  .annotateMerge(OpenApi.annotations({ title: "Members", description: "Org membership and roles; ending a member's sessions" }))
{}
