import { Config } from "effect"

import { Conflict } from "@cowork/domain"
import { Effect } from "effect"

/** What the session stores share: the defaults of a new session, and the idempotent-prompt rule. */

export const DEFAULT_SESSION_TITLE = "Untitled session"

/** The profile a session gets when the request names none and the process configures none. */
export const DEFAULT_PROFILE_NAME = "default"

/** OPEN_COWORK_CLOUD_PROFILE_NAME: the process's profile, read by composition roots (`layerConfig`), never by a store. */
export const DefaultProfileName = Config.String("OPEN_COWORK_CLOUD_PROFILE_NAME").pipe(Config.withDefault(DEFAULT_PROFILE_NAME))

/**
 * A prompt under an idempotency key already used on the session: the same text is the same prompt (its command is
 * returned); a different text is refused, naming the key, rather than silently dropped.
 */
export const replayIdempotentPrompt = (
  existing: { readonly commandId: string; readonly text: unknown },
  key: string,
  text: string
) =>
  existing.text === text
    ? Effect.succeed({ commandId: existing.commandId, created: false })
    : Effect.fail(new Conflict({
      message: `idempotency key \`${key}\` was already used for a different prompt on this session`,
      details: { field: "idempotencyKey", idempotencyKey: key }
    }))

/** A prompt with `multitaskStrategy: "reject"` while the session has an unfinished prompt. */
export const busyConflict = (sessionId: string) =>
  new Conflict({
    message: `session ${sessionId} has a prompt queued or running (multitaskStrategy reject)`,
    details: { field: "multitaskStrategy" }
  })
