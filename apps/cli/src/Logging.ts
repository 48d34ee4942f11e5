import { Logger } from "effect"

/**
 * One JSON object per log line (level, message, annotations, spans) on stderr, so stdout carries only what a
 * command prints for its caller (a token, the migrations applied, the owner-token banner).
 */
export const layer = Logger.layer([Logger.withConsoleError(Logger.formatJson)])
