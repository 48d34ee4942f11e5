/** What the session stores share: the defaults of a new session. */

export const DEFAULT_SESSION_TITLE = "Untitled session"

/** The profile a session gets when the request names none and the process configures none. */
export const DEFAULT_PROFILE_NAME = "default"
